//! The readers that live on the burn side (spiral weights, MNIST weights, spiral checkpoints),
//! fed random bytes or a real file with a random field: a value or a typed error, never a panic.

use nodal_experiments::mnist::models::{ModelConfig, ModelKind, load_weights};
use nodal_experiments::nodal::burn::tensor::Device;
use nodal_experiments::spiral::{CubedMlp, SpiralCheckpoint, SpiralConfig, SpiralTrainer};
use proptest::prelude::*;
use serde_json::Value;

fn tmp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("nodal-exp-readers-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let f = d.join(name);
    std::fs::write(&f, bytes).unwrap();
    f
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|x| Value::Number(x.into())),
        (0u64..2_000).prop_map(|x| Value::Number(x.into())),
        any::<f64>().prop_filter_map("finite", |x| serde_json::Number::from_f64(x).map(Value::Number)),
        "[a-z]{0,6}".prop_map(Value::String),
        prop::collection::vec(any::<f32>().prop_map(|x| serde_json::json!(x)), 0..300).prop_map(Value::Array),
    ]
}

proptest! {
    // A failing case can cost a 100,000-step solve: shrink briefly.
    #![proptest_config(ProptestConfig { cases: 96, max_shrink_iters: 32, ..ProptestConfig::default() })]

    #[test]
    fn weights_readers_never_panic_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1024), cut in 0usize..4000) {
        let f = tmp_file("random.safetensors", &bytes);
        prop_assert!(CubedMlp::load(&f).is_err());
        let model = ModelConfig::new(ModelKind::RkNet).init_seeded(&Device::flex(), 0);
        prop_assert!(load_weights(model, &f).is_err());
        // A real weights file cut anywhere.
        let good = tmp_file("good.safetensors", &[]);
        CubedMlp::init(1, 50).save(&good).unwrap();
        let whole = std::fs::read(&good).unwrap();
        let cut = cut.min(whole.len().saturating_sub(1));
        let f = tmp_file("cut.safetensors", &whole[..cut]);
        prop_assert!(CubedMlp::load(&f).is_err());
    }

    #[test]
    fn a_checkpoint_with_a_random_field_resumes_or_is_refused(field in 0usize..5, v in json_leaf()) {
        let cfg = SpiralConfig { iters: 5, ..SpiralConfig::default() };
        let mut t = SpiralTrainer::new(cfg.clone()).unwrap();
        t.step().unwrap();
        let mut ck = serde_json::to_value(t.checkpoint()).unwrap();
        let name = ["settings", "iter", "hidden", "params", "optimizer"][field];
        ck[name] = v;
        if let Ok(ck) = serde_json::from_value::<SpiralCheckpoint>(ck) {
            let mut fresh = SpiralTrainer::new(cfg).unwrap();
            if fresh.resume_from(&ck).is_ok() {
                // What was accepted trains on: a step with a finite loss, or (weights so large
                // that the dynamics cannot be solved) a typed solve error; never a NaN loss.
                let rec = fresh.step();
                prop_assert!(rec.as_ref().map_or(true, |r| r.loss.is_finite()), "{name}: an accepted checkpoint trained to {rec:?}");
            }
        }
    }
}
