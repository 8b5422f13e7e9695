//! The committed header compiles alone as C99, C11 and C++ with -Wall -Wextra -Werror -pedantic, and the
//! shared library exports exactly the `fio_` functions the header declares (nm).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn header_text() -> String {
    std::fs::read_to_string(root().join("include/frameio_c2c.h")).expect("header")
}

/// Remove /* ... */ comments.
fn strip_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        match rest[i..].find("*/") {
            Some(j) => rest = &rest[i + j + 2..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

fn header_functions() -> BTreeSet<String> {
    let code = strip_comments(&header_text());
    let mut names = BTreeSet::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while let Some(off) = code[i..].find("fio_") {
        let start = i + off;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let fn_ptr = start >= 2 && &code[start - 2..start] == "(*";
        let prev_ok =
            !fn_ptr && (start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_'));
        if prev_ok && end < bytes.len() && bytes[end] == b'(' {
            names.insert(code[start..end].to_string());
        }
        i = end.max(start + 4);
    }
    names
}

fn compile(compiler: &str, args: &[&str], src: &Path) {
    let out = std::env::temp_dir().join(common::unique("fio-hdr")).with_extension("o");
    let o = Command::new(compiler)
        .args(args)
        .arg("-I")
        .arg(root().join("include"))
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("run {compiler}: {e}"));
    let _ = std::fs::remove_file(&out);
    assert!(o.status.success(), "{compiler} {args:?} failed:\n{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn header_compiles_alone_as_c_and_cpp() {
    let dir = common::temp_dir("fio-hdr");
    let c = dir.join("h.c");
    std::fs::write(&c, "#include \"frameio_c2c.h\"\n#include \"frameio_c2c.h\"\nint fio_hdr_test(void) { return FIO_OK + (int)FIO_VERSION_MAJOR; }\n").unwrap();
    let cpp = dir.join("h.cpp");
    std::fs::write(&cpp, "#include \"frameio_c2c.h\"\nint fio_hdr_test() { fio_status s = FIO_OK; return s + (int)FIO_VERSION_MAJOR; }\n").unwrap();
    let strict = ["-Wall", "-Wextra", "-Werror", "-pedantic"];
    compile("gcc", &[&["-std=c99"][..], &strict].concat(), &c);
    compile("gcc", &[&["-std=c11"][..], &strict].concat(), &c);
    compile("g++", &[&["-std=c++11"][..], &strict].concat(), &cpp);
    compile("g++", &[&["-std=c++17"][..], &strict].concat(), &cpp);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn exported_symbols_equal_header_functions() {
    let so = common::target_profile_dir().join("libframeio_c2c.so");
    assert!(so.exists(), "{} missing", so.display());
    let o = Command::new("nm").args(["-D", "--defined-only"]).arg(&so).output().expect("nm");
    assert!(o.status.success());
    let exported: BTreeSet<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (_addr, kind, name) = (it.next()?, it.next()?, it.next()?);
            (kind == "T" && name.starts_with("fio_")).then(|| name.to_string())
        })
        .collect();
    let declared = header_functions();
    assert!(declared.len() > 60, "parsed only {} functions", declared.len());
    let missing: Vec<_> = declared.difference(&exported).collect();
    let undeclared: Vec<_> = exported.difference(&declared).collect();
    assert!(missing.is_empty(), "declared in the header but not exported: {missing:?}");
    assert!(undeclared.is_empty(), "exported but not in the header: {undeclared:?}");
}

#[test]
fn header_mentions_threading_and_ownership() {
    let h = header_text();
    assert!(h.contains("safe to share between threads"));
    assert!(h.contains("fio_string_free"));
    assert!(h.contains("typedef int32_t fio_status;"));
}
