//! Perturbation conditions and the label syntaxes screens use for them.
//!
//! A condition is the *set* of genes perturbed in a cell; the control condition is the
//! empty set. Screens spell conditions differently — GEARS writes `KLF1+ctrl`, `ctrl+KLF1`,
//! `CBL+CNN1` and `ctrl`; scPerturb writes `KLF1`, `CBL_CNN1` and `control` — so every
//! stage works on the canonical form instead: the sorted gene set joined by `+`, or `ctrl`.
//! `KLF1+ctrl` and `ctrl+KLF1` are therefore the same condition, `KLF1`.

use std::fmt;
use std::str::FromStr;

/// The canonical spelling of the control condition.
pub const CONTROL: &str = "ctrl";
/// The separator of genes in the canonical spelling.
pub const SEPARATOR: char = '+';
/// The separator of genes in scPerturb labels.
pub const SCPERTURB_SEPARATOR: char = '_';
/// Words screens use for an unperturbed token. A gene token made of one (or, in GEARS
/// labels, holding one between `_`) is a label in the other syntax, not a gene.
/// Case-sensitive: `CTRL` is an HGNC symbol.
const CONTROL_WORDS: [&str; 2] = [CONTROL, "control"];

/// How a screen spells its condition labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionSyntax {
    /// `A+B`, `A+ctrl`, `ctrl+A`, `ctrl` (GEARS, and the benchmark's Norman file).
    Gears,
    /// `A_B`, `A`, `control` (scPerturb).
    ScPerturb,
    /// Decide from the labels themselves: see [`ConditionSyntax::detect`].
    Auto,
}

impl ConditionSyntax {
    pub const NAMES: [&'static str; 3] = ["gears", "scperturb", "auto"];

    /// GEARS if any label contains `+`, scPerturb otherwise. A screen of singles written
    /// GEARS-style still contains `A+ctrl`, so the rule only misreads a scPerturb screen
    /// whose gene names contain `+`, which HGNC symbols never do.
    pub fn detect<'a>(labels: impl IntoIterator<Item = &'a str>) -> ConditionSyntax {
        if labels.into_iter().any(|l| l.contains(SEPARATOR)) {
            ConditionSyntax::Gears
        } else {
            ConditionSyntax::ScPerturb
        }
    }
}

impl FromStr for ConditionSyntax {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "gears" => Ok(ConditionSyntax::Gears),
            "scperturb" => Ok(ConditionSyntax::ScPerturb),
            "auto" => Ok(ConditionSyntax::Auto),
            _ => Err(format!("unknown condition syntax '{s}' (valid: {})", ConditionSyntax::NAMES.join(", "))),
        }
    }
}

/// How many genes a condition perturbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConditionKind {
    Control,
    Single,
    Double,
    /// Three or more genes.
    Multi,
}

impl ConditionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionKind::Control => "control",
            ConditionKind::Single => "single",
            ConditionKind::Double => "double",
            ConditionKind::Multi => "multi",
        }
    }
}

impl FromStr for ConditionKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "control" => Ok(ConditionKind::Control),
            "single" => Ok(ConditionKind::Single),
            "double" => Ok(ConditionKind::Double),
            "multi" => Ok(ConditionKind::Multi),
            _ => Err(format!("unknown condition kind '{s}'")),
        }
    }
}

impl fmt::Display for ConditionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A perturbation condition: a sorted set of distinct gene symbols (empty for control).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Condition {
    genes: Vec<String>,
}

impl Condition {
    pub fn control() -> Condition {
        Condition { genes: Vec::new() }
    }

    /// The condition perturbing these genes; order and repeats do not matter.
    pub fn from_genes<I, S>(genes: I) -> Condition
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut genes: Vec<String> = genes.into_iter().map(Into::into).collect();
        genes.sort();
        genes.dedup();
        Condition { genes }
    }

    /// Parses a label as the screen spells it. `control_label` is the screen's word for
    /// an unperturbed token (`ctrl` in GEARS, `control` in scPerturb); in GEARS syntax
    /// the token `ctrl` is always accepted as well.
    ///
    /// A label in the other syntax is an error, not a gene with an odd name: in scPerturb
    /// syntax a `+` (`AHR+FEV` would be one gene), in GEARS syntax a gene token holding a
    /// control word between `_` (`AHR_ctrl`), and in either a gene token that is a control
    /// word other than the screen's own (`control` in a screen whose control is `ctrl`).
    pub fn parse(label: &str, syntax: ConditionSyntax, control_label: &str) -> Result<Condition, String> {
        let label = label.trim();
        if label.is_empty() {
            return Err("empty condition label".to_string());
        }
        if label == control_label {
            return Ok(Condition::control());
        }
        let syntax = match syntax {
            ConditionSyntax::Auto => ConditionSyntax::detect([label]),
            s => s,
        };
        let separator = match syntax {
            ConditionSyntax::Gears => SEPARATOR,
            _ => SCPERTURB_SEPARATOR,
        };
        if syntax == ConditionSyntax::ScPerturb && label.contains(SEPARATOR) {
            return Err(format!(
                "condition label '{label}' contains '+', so scPerturb syntax would read it as one gene named '{label}'; it is a GEARS label: pass --condition-syntax gears"
            ));
        }
        let is_control_word = |w: &str| w == control_label || CONTROL_WORDS.contains(&w);
        let mut genes = Vec::new();
        for token in label.split(separator) {
            let token = token.trim();
            if token.is_empty() {
                return Err(format!("condition label '{label}' has an empty gene name"));
            }
            let is_control_token = token == control_label || (syntax == ConditionSyntax::Gears && token == CONTROL);
            if is_control_token {
                continue;
            }
            if is_control_word(token) {
                return Err(format!(
                    "condition label '{label}' names '{token}' as a gene, but '{token}' is a control word and this screen's control label is '{control_label}'; pass --control {token} if '{token}' marks the control cells, or relabel them"
                ));
            }
            if syntax == ConditionSyntax::Gears {
                if let Some(word) = token.split(SCPERTURB_SEPARATOR).find(|part| is_control_word(part)) {
                    let fixed: Vec<String> = label
                        .split(SEPARATOR)
                        .map(|t| t.trim())
                        .map(|t| if t == token { t.replace(SCPERTURB_SEPARATOR, "+") } else { t.to_string() })
                        .collect();
                    return Err(format!(
                        "condition label '{label}' mixes syntaxes: its gene '{token}' holds the control word '{word}' after '_' (scPerturb's separator), but GEARS labels separate genes with '+'; relabel it '{}', or pass --condition-syntax scperturb if every label separates genes with '_'",
                        fixed.join("+")
                    ));
                }
            }
            genes.push(token.to_string());
        }
        Ok(Condition::from_genes(genes))
    }

    /// Parses the canonical spelling written by [`Condition::canonical`] (also accepts
    /// GEARS spellings such as `A+ctrl`).
    pub fn parse_canonical(s: &str) -> Result<Condition, String> {
        Condition::parse(s, ConditionSyntax::Gears, CONTROL)
    }

    pub fn genes(&self) -> &[String] {
        &self.genes
    }

    pub fn is_control(&self) -> bool {
        self.genes.is_empty()
    }

    pub fn kind(&self) -> ConditionKind {
        match self.genes.len() {
            0 => ConditionKind::Control,
            1 => ConditionKind::Single,
            2 => ConditionKind::Double,
            _ => ConditionKind::Multi,
        }
    }

    /// `ctrl`, `KLF1` or `CBL+CNN1`.
    pub fn canonical(&self) -> String {
        if self.genes.is_empty() {
            CONTROL.to_string()
        } else {
            self.genes.join("+")
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl FromStr for Condition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Condition::parse_canonical(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gears(label: &str) -> Condition {
        Condition::parse(label, ConditionSyntax::Gears, "ctrl").unwrap()
    }

    #[test]
    fn gears_labels_reduce_to_sorted_gene_sets() {
        assert_eq!(gears("ctrl"), Condition::control());
        assert_eq!(gears("KLF1+ctrl").canonical(), "KLF1");
        assert_eq!(gears("ctrl+KLF1"), gears("KLF1+ctrl"));
        assert_eq!(gears("CNN1+CBL").canonical(), "CBL+CNN1");
        assert_eq!(gears("CBL+CNN1").kind(), ConditionKind::Double);
        assert_eq!(gears("A+B+C").kind(), ConditionKind::Multi);
        assert_eq!(gears("ctrl+ctrl").kind(), ConditionKind::Control);
    }

    #[test]
    fn scperturb_labels_use_underscore_and_their_own_control_word() {
        let parse = |l| Condition::parse(l, ConditionSyntax::ScPerturb, "control").unwrap();
        assert_eq!(parse("control"), Condition::control());
        assert_eq!(parse("KLF1").canonical(), "KLF1");
        assert_eq!(parse("CNN1_CBL").canonical(), "CBL+CNN1");
        assert_eq!(parse("HLA-A_MT-ND1").canonical(), "HLA-A+MT-ND1");
    }

    #[test]
    fn a_gears_label_read_as_scperturb_is_refused() {
        // Stored as one gene "AHR+FEV", it would read back as the double AHR+FEV.
        let err = Condition::parse("AHR+FEV", ConditionSyntax::ScPerturb, "control").unwrap_err();
        assert!(err.contains("'AHR+FEV'") && err.contains("--condition-syntax gears"), "{err}");
        let err = Condition::parse("AHR+ctrl", ConditionSyntax::ScPerturb, "ctrl").unwrap_err();
        assert!(err.contains("--condition-syntax gears"), "{err}");
    }

    #[test]
    fn labels_mixing_syntaxes_are_refused_and_plain_underscores_still_parse() {
        for label in ["AHR_ctrl", "ctrl_AHR", "AHR_control+FEV", "FEV+AHR_ctrl"] {
            let err = Condition::parse(label, ConditionSyntax::Gears, "ctrl").unwrap_err();
            assert!(err.contains(&format!("'{label}' mixes syntaxes")) && err.contains("--condition-syntax scperturb"), "{err}");
        }
        let err = Condition::parse("AHR_ctrl", ConditionSyntax::Gears, "ctrl").unwrap_err();
        assert!(err.contains("relabel it 'AHR+ctrl'"), "{err}");
        let err = Condition::parse("MT_ND1+AHR_ctrl", ConditionSyntax::Gears, "ctrl").unwrap_err();
        assert!(err.contains("its gene 'AHR_ctrl'") && err.contains("relabel it 'MT_ND1+AHR+ctrl'"), "{err}");
        // The screen's own control word counts too.
        assert!(Condition::parse("AHR_NT", ConditionSyntax::Gears, "NT").is_err());
        // Auto resolves per label here: '+' makes it GEARS.
        assert!(Condition::parse("AHR_ctrl+FEV", ConditionSyntax::Auto, "ctrl").is_err());
        // A control word as a whole gene, in either syntax.
        assert!(Condition::parse("AHR+control", ConditionSyntax::Gears, "ctrl").unwrap_err().contains("control word"));
        assert!(Condition::parse("ctrl", ConditionSyntax::ScPerturb, "control").unwrap_err().contains("--control ctrl"));
        assert!(Condition::parse("AHR_ctrl", ConditionSyntax::ScPerturb, "control").is_err());
        // Genes with '_' or '-' and no control word are genes.
        assert_eq!(gears("MT_ND1+ctrl").genes(), ["MT_ND1".to_string()]);
        assert_eq!(gears("HLA-A+MT_ND1").canonical(), "HLA-A+MT_ND1");
        assert_eq!(gears("C1orf_ctrlx+ctrl").canonical(), "C1orf_ctrlx", "only whole '_'-parts count");
        assert_eq!(gears("CTRL+ctrl").canonical(), "CTRL", "CTRL is an HGNC symbol");
        // scPerturb's own control token inside a label is still dropped.
        assert_eq!(Condition::parse("AHR_control", ConditionSyntax::ScPerturb, "control").unwrap().canonical(), "AHR");
    }

    #[test]
    fn repeated_genes_collapse_and_empty_tokens_are_rejected() {
        assert_eq!(gears("A+A").canonical(), "A");
        assert!(Condition::parse("A++B", ConditionSyntax::Gears, "ctrl").is_err());
        assert!(Condition::parse("  ", ConditionSyntax::Gears, "ctrl").is_err());
    }

    #[test]
    fn canonical_spelling_round_trips() {
        for label in ["ctrl", "KLF1", "CBL+CNN1", "A+B+C"] {
            assert_eq!(label.parse::<Condition>().unwrap().canonical(), label);
        }
    }

    #[test]
    fn syntax_detection_looks_for_plus() {
        assert_eq!(ConditionSyntax::detect(["ctrl", "A+ctrl"]), ConditionSyntax::Gears);
        assert_eq!(ConditionSyntax::detect(["control", "A_B"]), ConditionSyntax::ScPerturb);
    }
}
