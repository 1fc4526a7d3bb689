//! The Snakemake workflow's configs, written from the same definitions as `perturb
//! reproduce`: the scale's screen, seeds, training flags and network study, and the
//! default variants with their flags. `pipelines/config/quick.yaml` and `default.yaml` are
//! this module's output (`cargo xtask snakemake-config --scale S`); a test fails when
//! they differ.

use std::fmt::Write;

use crate::{network_model_name, variants, Degradation, Scale, DEFAULT_DEVICE, DEFAULT_GRN, STUDY_TASK};

/// The tasks of the simulated screen, which has both singles and doubles.
const SIMULATED_TASKS: [&str; 2] = ["double", "unseen_single"];

/// The config of the study at `scale` on the simulated screen.
pub fn config(scale: Scale) -> String {
    let mut y = String::new();
    let what = match scale {
        Scale::Quick => "The tests' scale: the same study as `cargo xtask reproduce --quick`.".to_string(),
        Scale::Default => "The embedded default study: the same as `cargo xtask reproduce`.".to_string(),
        other => format!("The {} scale: the same study as `perturb reproduce --scale {}`.", other.name(), other.name()),
    };
    let _ = writeln!(y, "# {what}\n# Written by `cargo xtask snakemake-config --scale {}`; edit perturb-pipeline, not this file.", scale.name());
    let out = if scale == Scale::Default { "results/snakemake".to_string() } else { format!("results/snakemake-{}", scale.name()) };
    let _ = writeln!(y, "out: {out}");
    let _ = writeln!(y, "simulate_args: \"{}\"", scale.simulate_args().join(" "));
    let _ = writeln!(y, "seeds: {}", list(scale.default_seeds().iter().map(u64::to_string)));
    let _ = writeln!(y, "train_args: \"{}\"", scale.train_args().join(" "));
    y.push_str("network_study:\n");
    for Degradation { kind, option, fraction } in scale.network_study() {
        let _ = writeln!(y, "  {}: \"{option} {fraction}\"", network_model_name(variants::NETWORK_STUDY_VARIANT, kind, fraction));
    }
    let _ = writeln!(y, "perturb: target/release/perturb\ninput: \"\"\ningest_args: \"\"");
    let _ = writeln!(y, "grn: {DEFAULT_GRN}\ndevice: {DEFAULT_DEVICE}");
    let _ = writeln!(y, "tasks: {}", list(SIMULATED_TASKS.iter().map(|t| t.to_string())));
    y.push_str("models:\n");
    for v in variants::DEFAULT_VARIANTS {
        let _ = writeln!(y, "  {v}: \"{}\"", variants::flags(v).unwrap_or_default().join(" "));
    }
    let _ = writeln!(y, "recommended: {}\nstudy_model: {}", variants::RECOMMENDED, variants::NETWORK_STUDY_VARIANT);
    let _ = writeln!(y, "study_tasks: [{STUDY_TASK}]");
    let attention = variants::ATTENTION_VARIANTS.iter().filter(|v| variants::DEFAULT_VARIANTS.contains(v)).map(|v| v.to_string());
    let _ = writeln!(y, "attention: {}\ngpu: false", list(attention));
    y
}

fn list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed configs are today's: the workflow trains the models `perturb
    /// reproduce` trains, with the same flags, seeds, screen and network study.
    #[test]
    fn the_snakemake_configs_are_written_from_the_study_definitions() {
        for scale in [Scale::Quick, Scale::Default] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../pipelines/config/{}.yaml", scale.name()));
            let committed = std::fs::read_to_string(&path).unwrap();
            assert_eq!(committed, config(scale), "{}: run `cargo xtask snakemake-config --scale {} > {}`", path.display(), scale.name(), path.display());
        }
    }

    #[test]
    fn the_quick_config_names_its_network_study_and_the_recommended_model() {
        let quick = config(Scale::Quick);
        assert!(quick.contains("  app_plus_drop50: \"--drop-edges 0.5\"\n  app_plus_add100: \"--add-edges 1\"\n"), "{quick}");
        assert!(quick.contains("seeds: [1, 2]\n") && quick.contains("recommended: app_plus\n"), "{quick}");
        assert!(quick.contains("  app_mean_pool: \"--pooling mean\"\n"), "{quick}");
    }
}
