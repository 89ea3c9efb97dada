//! Tests of the key-file reader and writer. The expected texts were written
//! by GLib 2.74 itself (`GKeyFile` loaded with `KEEP_COMMENTS |
//! KEEP_TRANSLATIONS`, then `to_data`), through PyGObject.

use super::*;

/// (input, Ok(what g_key_file_to_data writes) or Err(GLib's message)).
#[rustfmt::skip]
const ORACLE: &[(&str, Result<&str, &str>)] = &[
    ("[core]\nrepo_version=1\nmode=bare\n", Ok("[core]\nrepo_version=1\nmode=bare\n")),
    ("[core]\nrepo_version=1\nmode=bare\n\n[remote \"origin\"]\nurl=http://example.com/repo\ngpg-verify=false\n", Ok("[core]\nrepo_version=1\nmode=bare\n\n[remote \"origin\"]\nurl=http://example.com/repo\ngpg-verify=false\n")),
    ("# c\n[g]\nk=v\n", Ok("# c\n\n[g]\nk=v\n")),
    ("[g]\nk=v\n[h]\nx=y\n", Ok("[g]\nk=v\n\n[h]\nx=y\n")),
    ("[g]\nk=v\n\n\n[h]\nx=y", Ok("[g]\nk=v\n\n\n[h]\nx=y\n")),
    ("[g]\nk = v  \n  a\tb  =  c\t \n", Ok("[g]\nk=v  \na\tb=c\t \n")),
    ("[g]  \t\n  [h]\n", Ok("[g]\n\n[h]\n")),
    ("[g]\n[g]\nk=v\n[h]\n[g]\nz=1\n", Ok("[g]\nk=v\nz=1\n\n[h]\n")),
    ("[g]\nk=1\nk=2\n", Ok("[g]\nk=1\nk=2\n")),
    ("  # indented\n\t\n[g]\n   \nk=v\n", Ok("  # indented\n\t\n\n[g]\n   \nk=v\n")),
    ("[g]\r\nk=v\r\n\r\n# c\r\n", Ok("[g]\nk=v\n\n# c\n")),
    ("", Ok("")),
    ("\n", Ok("\n")),
    ("# only a comment", Ok("# only a comment\n")),
    ("[g]\nName=C\nName[de]=D\nName[de_DE.UTF-8@euro]=E\n", Ok("[g]\nName=C\nName[de]=D\nName[de_DE.UTF-8@euro]=E\n")),
    ("[g]\nEncoding=UTF-8\n", Ok("[g]\nEncoding=UTF-8\n")),
    ("[g]\n[h]\nEncoding=latin1\n", Ok("[g]\n\n[h]\nEncoding=latin1\n")),
    ("[g]\nk=a\\qb\nl=a;b\\;c;;d;\n", Ok("[g]\nk=a\\qb\nl=a;b\\;c;;d;\n")),
    ("[Application]\nname=org.example.App\nruntime=org.freedesktop.Platform/x86_64/23.08\nsdk=org.freedesktop.Sdk/x86_64/23.08\ncommand=app\n\n[Context]\nshared=network;ipc;\nsockets=x11;wayland;\n", Ok("[Application]\nname=org.example.App\nruntime=org.freedesktop.Platform/x86_64/23.08\nsdk=org.freedesktop.Sdk/x86_64/23.08\ncommand=app\n\n[Context]\nshared=network;ipc;\nsockets=x11;wayland;\n")),
    ("[origin]\nrefspec=fedora:fedora/x86_64/coreos/stable\n", Ok("[origin]\nrefspec=fedora:fedora/x86_64/coreos/stable\n")),
    ("[g]\nk=\n", Ok("[g]\nk=\n")),
    ("[g]\nk=  \\s lead\n", Ok("[g]\nk=\\s lead\n")),
    ("[g]\na=b=c\n", Ok("[g]\na=b=c\n")),
    ("[g]\nkey with spaces=v\n", Ok("[g]\nkey with spaces=v\n")),
    ("[a b]\nk=v\n", Ok("[a b]\nk=v\n")),
    ("[g]\n#k=v\n;semicolon=comment?\n", Ok("[g]\n#k=v\n;semicolon=comment?\n")),
    ("k=v\n", Err("Key file does not start with a group")),
    ("# c\nk=v\n", Err("Key file does not start with a group")),
    ("[g]\nnokey\n", Err("Key file contains line “nokey” which is not a key-value pair, group, or comment")),
    ("[g]\n=v\n", Err("Key file contains line “=v” which is not a key-value pair, group, or comment")),
    ("[g]\n[x=y\n", Err("Invalid key name: [x")),
    ("[g]\na]b=c\n", Err("Invalid key name: a]b")),
    ("[g]\nName[d e]=y\n", Err("Invalid key name: Name[d e]")),
    ("[]\n", Err("Invalid group name: ")),
    ("[a[b]\n", Err("Invalid group name: a[b")),
    ("[g] x\n", Err("Key file contains line “[g] x” which is not a key-value pair, group, or comment")),
    ("[g]\nEncoding=latin1\n", Err("Key file contains unsupported encoding “latin1”")),
    ("[g\n", Err("Key file contains line “[g” which is not a key-value pair, group, or comment")),
    ("[g]]\n", Err("Key file contains line “[g]]” which is not a key-value pair, group, or comment")),
    ("[g]\n k [de] = v\n", Err("Invalid key name: k [de]")),
    ("[g]\nk[]=v\n", Ok("[g]\nk[]=v\n")),
    ("[g]\nk[de]x=v\n", Err("Invalid key name: k[de]x")),
];

#[test]
fn round_trip_matches_glib() {
    for (input, expect) in ORACLE {
        match (KeyFile::parse(input), expect) {
            (Ok(kf), Ok(out)) => {
                assert_eq!(kf.to_string(), *out, "{input:?}");
                // Writing is stable: what we wrote reads back the same.
                let again = KeyFile::parse(out).unwrap();
                assert_eq!(again.to_string(), *out, "{input:?}");
                for g in kf.groups() {
                    for k in kf.keys(g) {
                        assert_eq!(again.get_raw(g, k), kf.get_raw(g, k));
                    }
                }
            }
            (Err(e), Err(msg)) => assert!(e.to_string().ends_with(msg), "{input:?}: {e} vs {msg}"),
            (got, _) => panic!("{input:?}: got {got:?}, GLib {expect:?}"),
        }
    }
}

#[test]
fn errors_carry_line_numbers() {
    let e = KeyFile::parse("# c\n\n[g]\nk=v\nbroken\n").unwrap_err();
    assert_eq!(
        e,
        KeyFileError::InvalidLine {
            line: 5,
            text: "broken".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "line 5: Key file contains line \u{201c}broken\u{201d} which is not a key-value pair, group, or comment"
    );
    assert_eq!(
        KeyFile::parse("\nk=v").unwrap_err(),
        KeyFileError::NoGroup { line: 2 }
    );
    assert_eq!(
        KeyFile::parse("[g]\n[a]b]\n").unwrap_err(),
        KeyFileError::InvalidLine {
            line: 2,
            text: "[a]b]".into()
        }
    );
    assert_eq!(
        KeyFile::parse("[g]\nk=v\0w\n").unwrap_err(),
        KeyFileError::NulByte { line: 2 }
    );
}

#[test]
fn values_unescape_like_glib() {
    let kf = KeyFile::parse(
        "[g]\ns=\\slead\\ttab\\nnl\\rcr\\\\bs\nbad=a\\qb\nend=x\\\nb1=true  \nb2=1\nb3=false\nb4=0\nb5=yes\n\
         l=a;b\\;c;;d;\nl2=;\nl3=\nl4=a;b\n",
    )
    .unwrap();
    assert_eq!(kf.get("g", "s"), Some(" lead\ttab\nnl\rcr\\bs"));
    assert_eq!(kf.get_checked("g", "s"), Ok(Some(" lead\ttab\nnl\rcr\\bs")));
    assert_eq!(kf.get("g", "bad"), Some("a\\qb"));
    assert!(kf.get_checked("g", "bad").is_err());
    assert!(kf.get_checked("g", "end").is_err());
    assert_eq!(kf.get_checked("g", "missing"), Ok(None));
    assert_eq!(kf.get_bool("g", "b1"), Ok(Some(true)));
    assert_eq!(kf.get_bool("g", "b2"), Ok(Some(true)));
    assert_eq!(kf.get_bool("g", "b3"), Ok(Some(false)));
    assert_eq!(kf.get_bool("g", "b4"), Ok(Some(false)));
    assert_eq!(kf.get_bool("g", "missing"), Ok(None));
    let e = kf.get_bool("g", "b5").unwrap_err();
    assert!(
        matches!(e, KeyFileError::InvalidValue { line: 9, .. }),
        "{e}"
    );
    assert_eq!(kf.get_list("g", "l").unwrap(), ["a", "b;c", "", "d"]);
    assert_eq!(kf.get_list("g", "l2").unwrap(), [""]);
    assert!(kf.get_list("g", "l3").unwrap().is_empty());
    assert_eq!(kf.get_list("g", "l4").unwrap(), ["a", "b"]);
    assert_eq!(kf.get_list("g", "missing"), None);
}

#[test]
fn set_escapes_like_glib() {
    let mut kf = KeyFile::new();
    kf.set("core", "repo_version", "1");
    kf.set("core", "mode", "bare");
    assert_eq!(kf.to_string(), "[core]\nrepo_version=1\nmode=bare\n");
    kf.set("remote \"origin\"", "url", "http://x");
    assert_eq!(
        kf.to_string(),
        "[core]\nrepo_version=1\nmode=bare\n\n[remote \"origin\"]\nurl=http://x\n"
    );

    kf.set("g", "k", " \tlead\ttab\n\r\\ trail ");
    assert_eq!(
        kf.get_raw("g", "k"),
        Some("\\s\\tlead\ttab\\n\\r\\\\ trail ")
    );
    assert_eq!(kf.get("g", "k"), Some(" \tlead\ttab\n\r\\ trail "));
    kf.set_list("g", "l", &["x;y", "", "z\\", " s"]).unwrap();
    assert_eq!(kf.get_raw("g", "l"), Some("x\\;y;;z\\\\;\\ss;"));
    assert_eq!(kf.get_list("g", "l").unwrap(), ["x;y", "", "z\\", " s"]);
    kf.set_bool("g", "b", true).unwrap();
    assert_eq!(kf.get_raw("g", "b"), Some("true"));
    let back = KeyFile::parse(&kf.to_string()).unwrap();
    assert_eq!(back.to_string(), kf.to_string());
    assert_eq!(back.get("g", "k"), Some(" \tlead\ttab\n\r\\ trail "));
}

#[test]
fn set_refuses_names_that_would_not_read_back() {
    let mut kf = KeyFile::new();
    for key in ["", "a=b", "a]", "[a", "#a", " a", "a ", "a\nb", "k[d e]"] {
        assert_eq!(
            kf.try_set("g", key, "v"),
            Err(KeyFileError::BadKeyName(key.into())),
            "{key:?}"
        );
    }
    for group in ["", "a[b", "a]b", "a\nb"] {
        assert_eq!(
            kf.try_set(group, "k", "v"),
            Err(KeyFileError::BadGroupName(group.into())),
            "{group:?}"
        );
    }
    kf.set("a]b", "k", "v"); // ignored, as GLib ignores it
    assert_eq!(kf.to_string(), "");
    kf.try_set("g", "Name[de_DE.UTF-8@euro]", "v").unwrap();
    assert_eq!(kf.to_string(), "[g]\nName[de_DE.UTF-8@euro]=v\n");
}

#[test]
fn set_replaces_in_place_and_adds_after_the_last_key() {
    let text =
        "# top\n[core]\nrepo_version=1\nmode=bare\n\n# the origin remote\n[remote \"o\"]\nurl=x\n";
    let mut kf = KeyFile::parse(text).unwrap();
    kf.set("core", "mode", "archive-z2");
    kf.set("core", "min-free-space-percent", "3");
    kf.set("remote \"o\"", "gpg-verify", "false");
    kf.set("new", "a", "b");
    assert_eq!(
        kf.to_string(),
        "# top\n\n[core]\nrepo_version=1\nmode=archive-z2\nmin-free-space-percent=3\n\n# the origin remote\n\n\
         [remote \"o\"]\nurl=x\ngpg-verify=false\n\n[new]\na=b\n"
    );
    // Without comments, this is what ostree writes.
    let mut kf =
        KeyFile::parse("[core]\nrepo_version=1\nmode=bare\n\n[remote \"o\"]\nurl=x\n").unwrap();
    kf.set("core", "collection-id", "org.example");
    assert_eq!(
        kf.to_string(),
        "[core]\nrepo_version=1\nmode=bare\ncollection-id=org.example\n\n[remote \"o\"]\nurl=x\n"
    );
    // A repeated key: the last one is read and replaced.
    let mut kf = KeyFile::parse("[g]\nk=1\nk=2\n").unwrap();
    assert_eq!(kf.get("g", "k"), Some("2"));
    kf.set("g", "k", "3");
    assert_eq!(kf.to_string(), "[g]\nk=1\nk=3\n");
}

#[test]
fn remove_keys_and_groups() {
    let text = "[a]\nk=1\n\n# about b\n[b]\nk=2\nk=3\n# kept\nj=4\n\n# about c\n[c]\nk=3\n";
    let mut kf = KeyFile::parse(text).unwrap();
    assert!(kf.remove_key("b", "k"));
    assert!(!kf.remove_key("b", "k"));
    assert!(!kf.remove_key("nope", "k"));
    assert_eq!(kf.get("b", "k"), None);
    assert_eq!(
        kf.to_string(),
        "[a]\nk=1\n\n# about b\n\n[b]\n# kept\nj=4\n\n# about c\n\n[c]\nk=3\n"
    );
    assert!(kf.remove_group("c"));
    assert!(!kf.remove_group("c"));
    assert!(!kf.has_group("c"));
    assert!(kf.has_group("b") && kf.has_key("b", "j") && !kf.has_key("b", "k"));
    assert_eq!(kf.groups().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(
        kf.to_string(),
        "[a]\nk=1\n\n# about b\n\n[b]\n# kept\nj=4\n\n# about c\n"
    );
}

#[test]
fn translations() {
    let kf = KeyFile::parse("[a]\nName=C\nName[de]=D\nName[de_DE]=DD\nName[fr@euro]=FE\n").unwrap();
    // What g_key_file_get_locale_string returned for each locale.
    for (locale, expect) in [
        ("de", "D"),
        ("de_DE", "DD"),
        ("de_AT", "D"),
        ("de_DE.UTF-8", "DD"),
        ("fr_FR@euro", "FE"),
        ("fr", "C"),
        ("it", "C"),
        ("C", "C"),
    ] {
        assert_eq!(kf.get_locale("a", "Name", locale), Some(expect), "{locale}");
    }
    assert_eq!(
        kf.keys("a"),
        ["Name", "Name[de]", "Name[de_DE]", "Name[fr@euro]"]
    );
    // g_get_locale_variants.
    for (locale, expect) in [
        (
            "en_GB.UTF-8@euro",
            &[
                "en_GB.UTF-8@euro",
                "en_GB@euro",
                "en.UTF-8@euro",
                "en@euro",
                "en_GB.UTF-8",
                "en_GB",
                "en.UTF-8",
                "en",
            ][..],
        ),
        ("de", &["de"]),
        ("de_DE", &["de_DE", "de"]),
        ("x.y", &["x.y", "x"]),
        ("a@b_c", &["a@b_c", "a@b"]),
        ("a.b_c@d", &["a.b_c@d", "a.b@d", "a.b_c", "a.b"]),
        ("_x", &["_x", ""]),
        ("", &[""]),
    ] {
        assert_eq!(locale_variants(locale), expect, "{locale}");
    }
}

#[test]
fn carriage_returns_and_blank_lines() {
    let kf = KeyFile::parse("[g]\r\nk=v\r\r\n\r\n").unwrap();
    assert_eq!(kf.get("g", "k"), Some("v"));
    assert_eq!(kf.to_string(), "[g]\nk=v\n\n");
    let kf = KeyFile::parse("\n\n[g]\n").unwrap();
    assert_eq!(kf.to_string(), "\n\n[g]\n");
}
