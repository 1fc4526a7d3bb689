//! Names: an enumeration's spellings written once ([`named_enum!`]), and suggestions for
//! misspelt gene names in error messages.

/// Gives a field-less enum its one spelling per variant: `NAMES` (in declaration order), an
/// accessor returning a variant's name, and `FromStr`, whose error names the kind of
/// value and lists the valid spellings. `named_enum!(Task, "task", name, { Double =>
/// "double", … })`.
#[macro_export]
macro_rules! named_enum {
    ($ty:ident, $what:literal, $accessor:ident, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant's name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            pub fn $accessor(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl $crate::names::Named for $ty {
            const NAMES: &'static [&'static str] = <$ty>::NAMES;
        }

        impl ::std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> ::std::result::Result<Self, String> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    other => Err(format!("unknown {} '{}' (valid: {})", $what, other, Self::NAMES.join(", "))),
                }
            }
        }
    };
}

/// A [`named_enum!`]: its names, for a command line that lists them.
pub trait Named: std::str::FromStr<Err = String> {
    const NAMES: &'static [&'static str];
}

/// Names in `known` closest to `name` (case-insensitive edit distance, ties by name order
/// in `known`).
pub fn close_names<'a>(name: &str, known: &'a [String], n: usize) -> Vec<&'a str> {
    let lower = name.to_lowercase();
    let mut scored: Vec<(usize, &str)> = known.iter().map(|k| (edit_distance(&lower, &k.to_lowercase()), k.as_str())).collect();
    scored.sort();
    scored.into_iter().take(n).map(|(_, k)| k).collect()
}

/// Levenshtein distance.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Colour {
        Red,
        DeepBlue,
    }
    crate::named_enum!(Colour, "colour", as_str, { Red => "red", DeepBlue => "deep-blue" });

    #[test]
    fn a_named_enum_reads_and_writes_its_names_and_lists_them_when_refused() {
        assert_eq!(Colour::NAMES, ["red", "deep-blue"]);
        assert_eq!(<Colour as Named>::NAMES, Colour::NAMES);
        assert_eq!("deep-blue".parse::<Colour>(), Ok(Colour::DeepBlue));
        assert_eq!(Colour::Red.as_str(), "red");
        assert_eq!("blue".parse::<Colour>().unwrap_err(), "unknown colour 'blue' (valid: red, deep-blue)");
    }

    #[test]
    fn distances_and_suggestions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        let known: Vec<String> = ["KLF1", "KLF2", "GATA1", "CEBPA"].iter().map(|s| s.to_string()).collect();
        assert_eq!(close_names("klf3", &known, 2), ["KLF1", "KLF2"]);
    }
}
