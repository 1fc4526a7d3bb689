//! Suggestions for misspelt gene names in error messages.

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

    #[test]
    fn distances_and_suggestions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        let known: Vec<String> = ["KLF1", "KLF2", "GATA1", "CEBPA"].iter().map(|s| s.to_string()).collect();
        assert_eq!(close_names("klf3", &known, 2), ["KLF1", "KLF2"]);
    }
}
