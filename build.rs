//! Build script of the library: gives the shared library a versioned SONAME.
//!
//! ELF targets get `-Wl,-soname,libframeio_c2c.so.<abi>`, where `<abi>` is the major version, or
//! `0.<minor>` while the major version is 0 (Cargo's semver rule: 0.1 -> 0.2 may break the ABI, so
//! they must not share a SONAME). `make install` installs `libframeio_c2c.so.<version>` with the
//! symlinks `libframeio_c2c.so.<abi>` (the SONAME, what the loader looks for) and `libframeio_c2c.so`
//! (what `-lframeio_c2c` finds at link time).
//!
//! A program linked against the library in `target/<profile>/` records the SONAME as DT_NEEDED, so
//! this script also puts the symlink `libframeio_c2c.so.<abi> -> libframeio_c2c.so` next to it (the
//! in-tree C examples and tests, which use `-Wl,-rpath,target/<profile>`, keep running).

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    let minor = env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_else(|_| "0".into());
    let abi = if major == "0" { format!("0.{minor}") } else { major };
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let elf = matches!(
        target_os.as_str(),
        "linux" | "android" | "freebsd" | "netbsd" | "openbsd" | "dragonfly" | "solaris" | "illumos"
    );
    if !elf {
        return;
    }
    let soname = format!("libframeio_c2c.so.{abi}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");

    // OUT_DIR is <target-dir>/[<triple>/]<profile>/build/frameio-c2c-<hash>/out: the profile
    // directory, where cargo puts libframeio_c2c.so, is three levels up.
    #[cfg(unix)]
    if let Some(profile_dir) =
        env::var_os("OUT_DIR").map(PathBuf::from).and_then(|p| p.ancestors().nth(3).map(PathBuf::from))
    {
        let link = profile_dir.join(&soname);
        if std::fs::symlink_metadata(&link).is_err() {
            // dangling until cargo links the library; harmless if two builds race to create it
            let _ = std::os::unix::fs::symlink("libframeio_c2c.so", &link);
        }
    }
}
