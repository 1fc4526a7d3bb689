//! The named models of the study and the `perturb train` flags that make each.
//!
//! `app` is the seed design; the four ablations swap one part of it. The `app_*` names
//! after them are the improvements beyond the seed design, each a switch of `perturb
//! train`, reported under its own name so that none hides inside another. `modules` and
//! `grn_vae` are the sibling models, each with the ablations that switch off its
//! distinctive part.

/// (name, flags, what it is).
pub const VARIANTS: &[(&str, &[&str], &str)] = &[
    ("app", &[], "the seed design: GNN embeddings, attention pooling, linear decoder"),
    ("app_random_emb", &["--gene-embedding", "random"], "ablation: fixed random gene vectors instead of the GNN"),
    ("app_identity_emb", &["--gene-embedding", "identity"], "ablation: learned per-gene vectors without the graph"),
    ("app_mean_pool", &["--pooling", "mean"], "ablation: mean pooling instead of attention"),
    ("app_mlp_decoder", &["--decoder", "mlp"], "ablation: an MLP decoder instead of the linear one"),
    ("app_query_skip", &["--query-skip"], "improvement: the perturbation query joins the pooled state"),
    ("app_focus", &["--attention-focus"], "improvement: the attention starts on the perturbed genes"),
    ("app_dot", &["--pooling", "dot"], "improvement: scaled dot-product attention, perturbation-specific from the first step"),
    (
        "app_dot_reach",
        &["--pooling", "dot", "--attention-hops", "2"],
        "improvement: dot-product attention started on the genes within 2 hops downstream of the perturbed ones",
    ),
    ("app_cosine", &["--pooling", "cosine"], "improvement: cosine attention with a learned temperature, far from uniform from the first step"),
    (
        "app_cosine_reach",
        &["--pooling", "cosine", "--attention-hops", "1"],
        "improvement: cosine attention started on the perturbed genes' direct network targets",
    ),
    (
        "app_cosine_warm",
        &["--pooling", "cosine", "--min-epochs", "150"],
        "improvement: cosine attention trained 150 epochs before early stopping may stop, long enough to leave the mean solution",
    ),
    ("app_residual", &["--target", "residual"], "improvement: learn only a combination's deviation from its singles' sum"),
    ("app_propagation", &["--propagation", "3"], "improvement: gene-wise head reading the perturbation's spread through the network"),
    ("app_additive_gate", &["--additive-gate"], "improvement: gene-wise head gating the measured singles' effects"),
    ("app_plus", &["--query-skip", "--propagation", "3", "--additive-gate"], "improvements together: query skip, propagation and additive gate"),
    (
        "app_plus_local",
        &["--query-skip", "--propagation", "3", "--additive-gate", "--local-genes", "1280", "--local-expressed", "1024"],
        "improvement for large screens: app_plus with its attention and head on 1,280 genes per perturbation, the 1,024 most expressed and the 256 it reaches most",
    ),
    (
        "app_plus_trust",
        &["--query-skip", "--propagation", "3", "--additive-gate", "--edge-trust"],
        "improvement: app_plus learning how far to trust each prior edge its propagation runs over",
    ),
    ("modules", &["--model", "modules"], "sibling: gene programs, cluster-aware attention, structure-alignment losses (scBIG-style)"),
    ("modules_one_program", &["--model", "modules", "--programs", "1"], "ablation of modules: one program for all genes"),
    ("modules_no_align", &["--model", "modules", "--coherence-weight", "0", "--pathway-weight", "0"], "ablation of modules: structure-alignment losses off"),
    ("grn_vae", &["--model", "grn_vae"], "sibling: latent effects propagated through a learned, prior-masked GRN (GPO-VAE-style)"),
    ("grn_vae_fixed_grn", &["--model", "grn_vae", "--fixed-grn"], "ablation of grn_vae: the GRN held at the prior's signed weights"),
    ("grn_vae_no_align", &["--model", "grn_vae", "--alignment-weight", "0"], "ablation of grn_vae: GRN-alignment loss off"),
    (
        "grn_vae_residual",
        &["--model", "grn_vae", "--target", "residual"],
        "improvement of grn_vae: learn only a combination's deviation from its measured singles' sum",
    ),
];

/// The variants a default run trains: the seed design, its four ablations, the seed design
/// with its attention started on the perturbed genes, the seed design with an attention
/// that learns (cosine, trained past the mean solution), the best improved variant, and
/// the two siblings with the GRN VAE's ablations. The modules ablations (three times the
/// cost of the VAE's) are left to `--variants`.
pub const DEFAULT_VARIANTS: &[&str] = &[
    "app",
    "app_random_emb",
    "app_identity_emb",
    "app_mean_pool",
    "app_mlp_decoder",
    "app_focus",
    "app_cosine_warm",
    "app_plus",
    "modules",
    "grn_vae",
    "grn_vae_fixed_grn",
    "grn_vae_no_align",
];

/// The variants whose first-seed predictions also export attention, for the report.
pub const ATTENTION_VARIANTS: &[&str] =
    &["app", "app_focus", "app_dot", "app_dot_reach", "app_cosine", "app_cosine_reach", "app_cosine_warm", "app_plus", "modules"];

/// What a variant's model folder holds besides the prediction: `programs.parquet`
/// (modules) or `grn.parquet` (grn_vae), scored against the simulator's network.
pub fn structure_artifact(flags: &[&str]) -> Option<(&'static str, &'static str)> {
    let model = flags.windows(2).find(|w| w[0] == "--model").map(|w| w[1]);
    match model {
        Some("modules") => Some(("--programs", perturb_core::schema::programs::FILE)),
        Some("grn_vae") => Some(("--grn", perturb_core::schema::grn::FILE)),
        _ => None,
    }
}

/// The recommended model: the one `perturb train --preset best` trains and every study
/// reports on test beside its own validation pick (the report's "Model selection"). It
/// is the default study's validation pick; the report says so when a study picks another.
pub const RECOMMENDED: &str = "app_plus";

/// The variant whose dependence on the network the network-quality study measures.
pub const NETWORK_STUDY_VARIANT: &str = "app_plus";

/// Variants the network-quality study also measures when the study trains them: those
/// that learn which prior edges to trust, where random edges should hurt less.
pub const NETWORK_STUDY_WHEN_TRAINED: &[&str] = &["app_plus_trust"];

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
        assert!(NETWORK_STUDY_WHEN_TRAINED.iter().all(|v| flags(v).is_ok()));
        assert!(DEFAULT_VARIANTS.contains(&RECOMMENDED), "the recommended model is among those every study compares");
        assert_eq!(structure_artifact(flags("modules_no_align").unwrap()), Some(("--programs", "programs.parquet")));
        assert_eq!(structure_artifact(flags("grn_vae_fixed_grn").unwrap()), Some(("--grn", "grn.parquet")));
        assert_eq!(structure_artifact(flags("app_plus").unwrap()), None);
        let e = flags("gears").unwrap_err();
        assert!(e.contains("app_plus") && e.contains("app_mean_pool"), "{e}");
    }
}
