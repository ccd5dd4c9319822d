//! Problem files: any bytes parse to a valid problem or a typed error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nodal_formats::problem::Problem;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Problem::from_json_str(&String::from_utf8_lossy(data), "fuzz") {
        assert!(p.options().validate().is_ok());
        let _ = p.estimated_bytes(true);
    }
});
