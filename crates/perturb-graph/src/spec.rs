//! The `--source` specification: one source or a `+`-joined union.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// GEARS' GO recipe: Jaccard similarity of GO-term sets, top-k neighbours.
    Go,
    /// Signed TF -> target edges.
    Regulon,
    /// Post-translational (protein interaction) edges.
    Ppi,
    /// |Pearson| between genes over the training conditions' pseudobulk.
    Coexpression,
    /// A user file with source,target[,weight].
    Edges(PathBuf),
}

pub const VALID: &str = "go, regulon, ppi, coexpression, edges:PATH";

impl Source {
    pub fn origin(&self) -> String {
        match self {
            Source::Go => "go".into(),
            Source::Regulon => "regulon".into(),
            Source::Ppi => "ppi".into(),
            Source::Coexpression => "coexpression".into(),
            Source::Edges(p) => format!("edges:{}", p.display()),
        }
    }
}

/// Parses `go+regulon`, `edges:my.csv`, ... (a path may itself contain `+` only if it is
/// the last part).
pub fn parse(spec: &str) -> Result<Vec<Source>, String> {
    let mut out = Vec::new();
    let mut rest = spec.trim();
    while !rest.is_empty() {
        if let Some(path) = rest.strip_prefix("edges:") {
            if path.is_empty() {
                return Err("edges: needs a file path (edges:PATH)".into());
            }
            out.push(Source::Edges(PathBuf::from(path)));
            break;
        }
        let (head, tail) = rest.split_once('+').unwrap_or((rest, ""));
        let source = match head.trim() {
            "go" => Source::Go,
            "regulon" => Source::Regulon,
            "ppi" => Source::Ppi,
            "coexpression" => Source::Coexpression,
            other => return Err(format!("unknown graph source '{other}' (valid: {VALID}, joined with +)")),
        };
        if out.contains(&source) {
            return Err(format!("graph source '{head}' is named twice"));
        }
        out.push(source);
        rest = tail.trim();
    }
    if out.is_empty() {
        return Err(format!("empty graph source (valid: {VALID})"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unions_and_user_files() {
        assert_eq!(parse("go+regulon").unwrap(), [Source::Go, Source::Regulon]);
        assert_eq!(parse("ppi+edges:my+net.csv").unwrap(), [Source::Ppi, Source::Edges("my+net.csv".into())]);
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let e = parse("go+string").unwrap_err();
        assert!(e.contains("unknown graph source 'string'") && e.contains("regulon"), "{e}");
        assert!(parse("go+go").is_err());
        assert!(parse("").is_err());
    }
}
