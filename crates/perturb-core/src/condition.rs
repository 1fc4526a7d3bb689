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

impl ConditionSyntax {
    /// The syntax `label` is read in (`Auto` decided from the label alone) and the gene
    /// separator it implies.
    fn resolve(self, label: &str) -> (ConditionSyntax, char) {
        let syntax = match self {
            ConditionSyntax::Auto => ConditionSyntax::detect([label]),
            s => s,
        };
        let separator = if syntax == ConditionSyntax::Gears { SEPARATOR } else { SCPERTURB_SEPARATOR };
        (syntax, separator)
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

crate::named_enum!(ConditionKind, "condition kind", as_str, { Control => "control", Single => "single", Double => "double", Multi => "multi" });

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
        let (syntax, separator) = syntax.resolve(label);
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

/// Labels screens give their control cells, matched case-insensitively against a
/// screen's labels when no `--control` is named (see [`is_control_label`]).
pub const CONTROL_LABELS: [&str; 13] = [
    CONTROL,
    "control",
    "non-targeting",
    "non_targeting",
    "nontargeting",
    "NT",
    "NTC",
    "safe-targeting",
    "safe_targeting",
    "negative_control",
    "negative-control",
    "unperturbed",
    "scrambled",
];

/// Whether a whole label is one of [`CONTROL_LABELS`], ignoring case — except `CTRL`
/// spelled in capitals, which is an HGNC symbol (chymotrypsin-like elastase), not a control.
pub fn is_control_label(label: &str) -> bool {
    let label = label.trim();
    label != "CTRL" && CONTROL_LABELS.iter().any(|c| c.eq_ignore_ascii_case(label))
}

/// Whether a label looks like it marks control cells, beyond the exact
/// [`CONTROL_LABELS`]: guide-level control labels (`NTg1`, `NT_2`, `non-targeting_3`),
/// `safe_targeting_guide`, `scramble`, `CTRL` and the like. Used only to order the labels an
/// error message shows, never to decide what the control is.
pub fn looks_like_control(label: &str) -> bool {
    let lower = label.trim().to_ascii_lowercase();
    if lower.is_empty() {
        return false;
    }
    if is_control_label(label) || lower == "ctrl" || lower.contains("targeting") || lower.contains("targetting") {
        return true;
    }
    let words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let is_word = |w: &str| {
        matches!(
            w,
            "nt" | "ntc"
                | "ctrl"
                | "ctl"
                | "control"
                | "neg"
                | "negative"
                | "nontarget"
                | "nontargeting"
                | "safe"
                | "scr"
                | "intergenic"
                | "unperturbed"
                | "empty"
                | "mock"
                | "lacz"
                | "gfp"
                | "egfp"
                | "luciferase"
                | "luc"
        ) || w.starts_with("control")
            || w.starts_with("ctrl")
            || w.starts_with("scram")
    };
    // A word, optionally followed by a guide number (`NT1`, `NTg1`, `ctrl_2` splits apart).
    let control_word = |w: &str| {
        let stem = w.trim_end_matches(|c: char| c.is_ascii_digit());
        is_word(stem) || (stem.len() < w.len() && stem.strip_suffix('g').is_some_and(is_word))
    };
    words.iter().any(|w| control_word(w))
}

/// The first gene token of `label` that is a guide id, not a gene: why a screen's
/// labels name guides (`ZAP70_1`, `ATF2g1`, `NTg1`) rather than their target genes.
///
/// The signals, chosen so that no HGNC symbol trips them (a test checks every symbol of
/// `data/priors`): a token made only of digits (scPerturb's `ZAP70_1` splits into
/// `ZAP70` and `1`); a token `g<digits>` or `sg<digits>` (`ATF2_g1`); and a token that
/// ends in a lowercase `g` and digits after a stem holding no lowercase letter
/// (`ATF2g1`, `NTg1`) — HGNC symbols are upper case apart from `orf`, so a real symbol
/// such as `NEUROG2` or `LIG1` never ends that way, and mouse-style symbols (`Neurog2`,
/// `Lig1`) have a lowercase stem. `NKX2-1`, `HLA-A`, `C1orf112`, `H2AC6` are genes. In
/// GEARS syntax a token is the whole `+`-separated part, so `C4B_2` stays a gene there.
/// `control_label` and, in GEARS syntax, `ctrl` tokens are skipped.
pub fn guide_token(label: &str, syntax: ConditionSyntax, control_label: &str) -> Option<String> {
    let label = label.trim();
    if label == control_label {
        return None;
    }
    let (syntax, separator) = syntax.resolve(label);
    label
        .split(separator)
        .map(str::trim)
        .filter(|t| !t.is_empty() && *t != control_label && !(syntax == ConditionSyntax::Gears && *t == CONTROL))
        .find(|t| is_guide_id(t))
        .map(str::to_string)
}

/// `1`, `g1`, `sg12`, `ATF2g1`, `NTg1` (see [`guide_token`]).
fn is_guide_id(token: &str) -> bool {
    let digits = token.len() - token.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return false;
    }
    let stem = &token[..token.len() - digits];
    if stem.is_empty() || stem == "g" || stem == "sg" {
        return true;
    }
    match stem.strip_suffix('g') {
        Some(gene) => !gene.is_empty() && !gene.chars().any(|c| c.is_ascii_lowercase()) && gene.chars().any(|c| c.is_ascii_uppercase()),
        None => false,
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
    #[test]
    fn control_labels_match_ignoring_case_but_ctrl_in_capitals_is_a_gene() {
        for l in
            ["ctrl", "control", "Control", "non-targeting", "Non-Targeting", "non_targeting", "NT", "ntc", "safe-targeting", "negative_control", "unperturbed"]
        {
            assert!(is_control_label(l), "{l}");
        }
        for l in ["CTRL", "NTg1", "ATF2", "NTS", "controls_1", "non-targeting_2"] {
            assert!(!is_control_label(l), "{l}");
        }
    }

    #[test]
    fn control_look_alikes_are_recognised_for_ordering_only() {
        for l in ["NTg1", "NT_2", "non-targeting_3", "safe_targeting_guide", "scramble", "CTRL", "neg1", "ctrl2", "Intergenic-4", "LacZ"] {
            assert!(looks_like_control(l), "{l}");
        }
        for l in ["ATF2", "NTRK1", "CNTN1", "NEGR1", "SAFB", "STAT1", "ATF2g1", "MT-ND1"] {
            assert!(!looks_like_control(l), "{l}");
        }
    }

    #[test]
    fn guide_ids_are_told_apart_from_gene_symbols() {
        let sc = |l: &str| guide_token(l, ConditionSyntax::ScPerturb, "control");
        let ge = |l: &str| guide_token(l, ConditionSyntax::Gears, "ctrl");
        assert_eq!(sc("ZAP70_1").as_deref(), Some("1"));
        assert_eq!(sc("ATF2g1").as_deref(), Some("ATF2g1"));
        assert_eq!(sc("NTg1").as_deref(), Some("NTg1"));
        assert_eq!(sc("ATF2_g2").as_deref(), Some("g2"));
        assert_eq!(sc("ATF2_sg2").as_deref(), Some("sg2"));
        assert_eq!(sc("7157").as_deref(), Some("7157"));
        assert_eq!(ge("ATF2g1+ctrl").as_deref(), Some("ATF2g1"));
        assert_eq!(ge("12+ctrl").as_deref(), Some("12"));
        for gene in ["C1orf112", "H2AC6", "NKX2-1", "HLA-A", "MT-ND1", "LINC02812", "NEXN-AS1", "NEUROG2", "LIG1", "ENSG00000141510", "MARCH8", "STAT1"] {
            assert_eq!(sc(gene), None, "{gene}");
            assert_eq!(ge(&format!("{gene}+ctrl")), None, "{gene}");
        }
        // Mouse-style symbols end in g<digits> after a lowercase stem: genes.
        for gene in ["Neurog2", "Lig1", "Cog3", "Adgrg6"] {
            assert_eq!(sc(gene), None, "{gene}");
        }
        // In GEARS syntax '_' belongs to the gene (C4B_2 is an HGNC symbol).
        assert_eq!(ge("C4B_2+ctrl"), None);
        assert_eq!(sc("control"), None);
        assert_eq!(sc("AHR_control"), None);
        assert_eq!(ge("ctrl"), None);
        assert_eq!(sc("CBL_CNN1"), None);
    }
}
