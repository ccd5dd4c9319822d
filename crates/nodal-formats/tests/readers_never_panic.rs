//! Every reader, fed random bytes, random JSON, and the reference problem with random fields
//! replaced, returns a value or a typed error: never a panic. Accepted problems are valid by
//! construction (their options validate, their estimate is computed).

use nodal_formats::idx::{parse_images, parse_labels, read_maybe_gzip};
use nodal_formats::io::parse_f32_tensors;
use nodal_formats::problem::Problem;
use proptest::prelude::*;
use serde_json::Value;
use std::path::Path;

fn reference_problem() -> Value {
    let text = include_str!("../../../data/reference/grad_vectors_seed0.json");
    serde_json::from_str::<Value>(text).unwrap()["problem"].clone()
}

/// Any JSON value, nested a few levels, with the numbers that break naive readers.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![Just(0.0), Just(-1.0), Just(1e308), Just(-1e-320), Just(5e-324), Just(1e20), any::<f64>()]
            .prop_filter_map("finite", |x: f64| serde_json::Number::from_f64(x).map(Value::Number)),
        any::<i64>().prop_map(|x| Value::Number(x.into())),
        any::<u64>().prop_map(|x| Value::Number(x.into())),
        "[a-zA-Z0-9_]{0,12}".prop_map(Value::String),
        prop_oneof![Just("NaN"), Just("Infinity"), Just("-Infinity"), Just("dopri5"), Just("rk4"), Just("float32"), Just("per_sample")]
            .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_0-9]{0,8}", inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: [&str; 14] = [
    "t",
    "solver",
    "rtol",
    "atol",
    "step_size",
    "max_steps",
    "weights",
    "y0",
    "dtype",
    "batch_mode",
    "adjoint_rtol",
    "adjoint_atol",
    "adjoint_seminorm",
    "problem",
];

fn check_problem(text: &str) {
    if let Ok(p) = Problem::from_json_str(text, "fuzz") {
        assert!(p.options().validate().is_ok(), "an accepted problem has valid options");
        assert!(p.adjoint_options().solve.validate().is_ok());
        // An accepted problem's sizes agree with each other.
        let (d, h) = (p.dim(), p.hidden());
        assert_eq!(p.flat_params::<f32>().len(), d * h + h + h * d + d, "[W1, b1, W2, b2] of a {d}-{h}-{d} MLP");
        assert!(p.estimated_bytes(true) >= p.estimated_bytes(false));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_any_reader(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let p = Path::new("fuzz");
        let _ = parse_images(&bytes, p);
        let _ = parse_labels(&bytes, p);
        let _ = parse_f32_tensors(&bytes, p, &[("net.0.bias", vec![50]), ("w", vec![2, 2])]);
        check_problem(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_idx_headers_never_panic(magic in prop_oneof![Just(2051u32), Just(2049u32), any::<u32>()],
                                      dims in prop::collection::vec(prop_oneof![Just(0u32), Just(1), Just(28), Just(u32::MAX), any::<u32>()], 0..4),
                                      tail in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut b: Vec<u8> = magic.to_be_bytes().to_vec();
        for d in dims {
            b.extend(d.to_be_bytes());
        }
        b.extend(tail);
        let _ = parse_images(&b, Path::new("x"));
        let _ = parse_labels(&b, Path::new("x"));
    }

    #[test]
    fn random_json_never_panics_the_problem_reader(v in json_value()) {
        check_problem(&v.to_string());
    }

    #[test]
    fn the_reference_problem_with_random_fields_never_panics(field in 0..FIELDS.len(), v in json_value(), drop in any::<bool>()) {
        let mut p = reference_problem();
        if drop {
            p.as_object_mut().unwrap().remove(FIELDS[field]);
        } else {
            p[FIELDS[field]] = v;
        }
        check_problem(&p.to_string());
        // The same with the non-standard tokens written bare, as Python writes them.
        check_problem(&p.to_string().replace("\"NaN\"", "NaN").replace("\"Infinity\"", "Infinity"));
    }

    #[test]
    fn random_gzip_streams_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let dir = std::env::temp_dir().join(format!("nodal-formats-gz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("x.gz");
        let mut data = vec![0x1f, 0x8b];
        data.extend(bytes);
        std::fs::write(&f, data).unwrap();
        let _ = read_maybe_gzip(&f);
    }
}

/// A gzip bomb (1 GiB + 1 of zeros compressed to about a megabyte) stops at the cap.
#[test]
fn a_gzip_bomb_stops_at_the_cap() {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("nodal-formats-bomb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bomb.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1025 {
        e.write_all(&zeros).unwrap();
    }
    std::fs::write(&f, e.finish().unwrap()).unwrap();
    let err = read_maybe_gzip(&f).unwrap_err().to_string();
    assert!(err.contains("decompresses to more than"), "{err}");
}
