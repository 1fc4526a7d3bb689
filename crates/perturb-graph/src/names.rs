//! Gene-name harmonisation: the screen's names mapped onto the priors' official symbols
//! through the alias table (symbol, then case, then alias, then Ensembl / Entrez id).

use std::collections::HashMap;

/// How a name was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    Symbol,
    Case,
    Alias,
    Identifier,
    Unmapped,
}

pub struct Harmoniser {
    symbols: HashMap<String, String>,
    upper: HashMap<String, Option<String>>,
    aliases: HashMap<String, Option<String>>,
    ids: HashMap<String, String>,
}

impl Harmoniser {
    /// `symbols`: every official symbol; `aliases`: (alias, symbol, kind) rows where kind
    /// is alias / ensembl / entrez.
    pub fn new<'a>(symbols: impl IntoIterator<Item = &'a str>, aliases: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) -> Self {
        let mut h = Harmoniser { symbols: HashMap::new(), upper: HashMap::new(), aliases: HashMap::new(), ids: HashMap::new() };
        for s in symbols {
            h.symbols.insert(s.to_string(), s.to_string());
            // A case-folded name that two symbols share is ambiguous: map it to neither.
            h.upper
                .entry(s.to_uppercase())
                .and_modify(|v| {
                    if v.as_deref() != Some(s) {
                        *v = None
                    }
                })
                .or_insert(Some(s.to_string()));
        }
        for (alias, symbol, kind) in aliases {
            if kind == "alias" {
                h.aliases
                    .entry(alias.to_uppercase())
                    .and_modify(|v| {
                        if v.as_deref() != Some(symbol) {
                            *v = None
                        }
                    })
                    .or_insert(Some(symbol.to_string()));
            } else {
                h.ids.insert(alias.split('.').next().unwrap_or(alias).to_string(), symbol.to_string());
            }
        }
        h
    }

    pub fn map(&self, name: &str) -> (Option<String>, Match) {
        if let Some(s) = self.symbols.get(name) {
            return (Some(s.clone()), Match::Symbol);
        }
        let upper = name.to_uppercase();
        if let Some(Some(s)) = self.upper.get(&upper) {
            return (Some(s.clone()), Match::Case);
        }
        if let Some(Some(s)) = self.aliases.get(&upper) {
            return (Some(s.clone()), Match::Alias);
        }
        if let Some(s) = self.ids.get(name.split('.').next().unwrap_or(name)) {
            return (Some(s.clone()), Match::Identifier);
        }
        (None, Match::Unmapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> Harmoniser {
        Harmoniser::new(
            ["KLF1", "CEBPA", "SEPTIN7"],
            [
                ("EKLF", "KLF1", "alias"),
                ("SEPT7", "SEPTIN7", "alias"),
                ("ENSG00000105610", "KLF1", "ensembl"),
                ("CEBP", "CEBPA", "alias"),
                ("CEBP", "CEBPB", "alias"),
            ],
        )
    }

    #[test]
    fn symbol_case_alias_and_identifier() {
        let h = h();
        assert_eq!(h.map("KLF1"), (Some("KLF1".into()), Match::Symbol));
        assert_eq!(h.map("klf1"), (Some("KLF1".into()), Match::Case));
        assert_eq!(h.map("Sept7"), (Some("SEPTIN7".into()), Match::Alias));
        assert_eq!(h.map("ENSG00000105610.4"), (Some("KLF1".into()), Match::Identifier));
    }

    #[test]
    fn ambiguous_aliases_and_unknown_names_stay_unmapped() {
        assert_eq!(h().map("CEBP"), (None, Match::Unmapped));
        assert_eq!(h().map("NOTAGENE"), (None, Match::Unmapped));
    }
}
