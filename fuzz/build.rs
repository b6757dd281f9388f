//! Compiles the extension's `csr_shim.c` (the C half of `check_csr`'s fast path, which needs
//! only OpenSSL's headers) into the fuzz targets, as the extension's build does. Under
//! cargo fuzz (AddressSanitizer on) it is built with clang, instrumented like the Rust code,
//! so libFuzzer sees its coverage and ASan its memory errors.

fn main() {
    let shim = "../pgssl_ext/src/ca/csr_shim.c";
    println!("cargo:rerun-if-changed={shim}");
    let mut build = cc::Build::new();
    build.file(shim).warnings(true);
    let sanitize = std::env::var("CARGO_CFG_SANITIZE").unwrap_or_default();
    if sanitize.split(',').any(|s| s == "address") {
        build
            .compiler("clang")
            .flag("-fsanitize=fuzzer-no-link,address");
    }
    build.compile("pgssl_csr_shim");
}
