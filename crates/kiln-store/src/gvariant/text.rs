//! GVariant text format (what `g_variant_print` writes and `g_variant_parse`
//! reads), for `--add-metadata`, `show` and `ls -X`.
