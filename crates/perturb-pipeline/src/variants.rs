//! The named models of the study and the `perturb train` flags that make each.
//!
//! `app` is the seed design; the four ablations swap one part of it. The `app_*` names
//! after them are the improvements beyond the seed design, each a switch of `perturb
//! train`, reported under its own name so that none hides inside another.

/// (name, flags, what it is).
pub const VARIANTS: &[(&str, &[&str], &str)] = &[
    ("app", &[], "the seed design: GNN embeddings, attention pooling, linear decoder"),
    ("app_random_emb", &["--gene-embedding", "random"], "ablation: fixed random gene vectors instead of the GNN"),
    ("app_identity_emb", &["--gene-embedding", "identity"], "ablation: learned per-gene vectors without the graph"),
    ("app_mean_pool", &["--pooling", "mean"], "ablation: mean pooling instead of attention"),
    ("app_mlp_decoder", &["--decoder", "mlp"], "ablation: an MLP decoder instead of the linear one"),
    ("app_query_skip", &["--query-skip"], "improvement: the perturbation query joins the pooled state"),
    ("app_focus", &["--attention-focus"], "improvement: the attention starts on the perturbed genes"),
    ("app_residual", &["--target", "residual"], "improvement: learn only a combination's deviation from its singles' sum"),
    ("app_propagation", &["--propagation", "3"], "improvement: gene-wise head reading the perturbation's spread through the network"),
    ("app_additive_gate", &["--additive-gate"], "improvement: gene-wise head gating the measured singles' effects"),
    ("app_plus", &["--query-skip", "--propagation", "3", "--additive-gate"], "improvements together: query skip, propagation and additive gate"),
];

/// The variants a default run trains: the seed design, its four ablations, the seed design
/// with its attention started on the perturbed genes, and the best improved variant.
pub const DEFAULT_VARIANTS: &[&str] = &["app", "app_random_emb", "app_identity_emb", "app_mean_pool", "app_mlp_decoder", "app_focus", "app_plus"];

/// The variants whose first-seed predictions also export attention, for the report.
pub const ATTENTION_VARIANTS: &[&str] = &["app", "app_focus", "app_plus"];

/// The variant whose dependence on the network the network-quality study measures.
pub const NETWORK_STUDY_VARIANT: &str = "app_plus";

pub fn flags(name: &str) -> Result<&'static [&'static str], String> {
    VARIANTS
        .iter()
        .find(|v| v.0 == name)
        .map(|v| v.1)
        .ok_or_else(|| format!("unknown model variant '{name}' (choose from {})", VARIANTS.iter().map(|v| v.0).collect::<Vec<_>>().join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_variant_is_defined_and_unknown_ones_are_listed() {
        for v in DEFAULT_VARIANTS {
            assert!(flags(v).is_ok(), "{v}");
        }
        assert!(flags(NETWORK_STUDY_VARIANT).is_ok());
        let e = flags("gears").unwrap_err();
        assert!(e.contains("app_plus") && e.contains("app_mean_pool"), "{e}");
    }
}
