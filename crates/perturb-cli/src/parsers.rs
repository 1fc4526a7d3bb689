//! Value parsers several subcommands share.

/// `FromStr` as a clap value parser, for types whose error is already a message.
pub(crate) fn parse<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, String> {
    s.parse()
}

/// The parser of a [`perturb_core::named_enum!`]: `--help` and a refusal list its names.
pub(crate) fn named<T: perturb_core::names::Named + Clone + Send + Sync + 'static>() -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(T::NAMES).try_map(|s| s.parse::<T>())
}
