//! IDX image and label files: any bytes parse or give a typed error, and what parses holds
//! exactly the data its header declares.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nodal_formats::idx::{parse_images, parse_labels};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(im) = parse_images(data, Path::new("fuzz")) {
        assert_eq!(im.pixels.len(), im.count * im.rows * im.cols);
    }
    if let Ok(l) = parse_labels(data, Path::new("fuzz")) {
        assert!(l.iter().all(|&x| x < 10));
    }
});
