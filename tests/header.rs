//! The committed C header must equal what cbindgen generates from src/ffi. Run `make header` (which sets
//! FIO_UPDATE_HEADER=1 for this test) to rewrite it.

use std::path::Path;

fn generate() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(Path::new(dir).join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(Path::new(dir).join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen could not generate the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("header is UTF-8")
}

#[test]
fn header_is_fresh() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/frameio_c2c.h");
    let fresh = generate();
    if std::env::var_os("FIO_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &fresh).expect("write header");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(committed == fresh, "include/frameio_c2c.h is stale: run `make header` and commit it");
}

#[test]
fn header_documents_every_function() {
    let h = generate();
    let lines: Vec<&str> = h.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        if t.contains(" fio_")
            && t.contains('(')
            && !t.starts_with('*')
            && !t.starts_with("/*")
            && !t.starts_with("typedef")
            && !t.starts_with("//")
            && !l.starts_with(' ')
        {
            // The line before a declaration must end a doc comment.
            let prev = lines[..i].iter().rev().find(|p| !p.trim().is_empty()).copied().unwrap_or("");
            assert!(prev.trim_end().ends_with("*/"), "undocumented C function: {t}");
        }
    }
}

#[test]
fn version_macros_match_cargo() {
    let h = generate();
    for (name, val) in [
        ("FIO_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("FIO_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("FIO_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        let line = format!("#define {name} {val}");
        assert!(h.lines().any(|l| l.trim() == line), "header lacks `{line}`");
    }
}
