//! Weights files: any bytes load the asked-for tensors (finite, of the asked-for shapes) or
//! give a typed error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nodal_formats::io::parse_f32_tensors;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let wanted = [("net.0.weight", vec![4usize, 2]), ("net.0.bias", vec![4])];
    if let Ok(t) = parse_f32_tensors(data, Path::new("fuzz"), &wanted) {
        assert_eq!(t[0].len(), 8);
        assert!(t.iter().flatten().all(|x| x.is_finite()));
    }
});
