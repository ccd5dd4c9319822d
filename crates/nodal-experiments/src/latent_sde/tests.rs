//! The latent SDE's pieces on small settings.

use super::*;

#[test]
#[ignore]
fn timing_probe() {
    let mut cfg = LatentSdeConfig::default();
    cfg.iters = 10;
    let t = Instant::now();
    let mut tr = LatentSdeTrainer::new(cfg).unwrap();
    eprintln!("data {:?}", t.elapsed());
    for _ in 0..6 {
        let r = tr.step().unwrap();
        eprintln!("{r:?}");
    }
    let t = Instant::now();
    eprintln!("{:?} eval {:?}", tr.evaluate().unwrap(), t.elapsed());
}
