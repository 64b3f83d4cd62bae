//! Every configuration file under `examples/` parses and validates.

use std::path::Path;

#[test]
fn every_example_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = l2tp_config::Config::from_file(&path) {
                panic!("{}:\n{e}", path.display());
            }
            n += 1;
        }
    }
    assert!(n >= 2, "expected the lac and lns examples, found {n}");
}

#[test]
fn the_lac_example_merges_its_drop_in() {
    let main = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/lac.toml");
    let c = l2tp_config::Config::load(&l2tp_config::ConfigPaths::explicit(main))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.sources().len(), 2, "{:?}", c.sources());
    let names: Vec<&str> = c.local_tunnels().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["backup", "lns1"]);
    let backup = c.local_tunnel("backup").unwrap();
    assert!(backup.persist);
    assert_eq!(
        backup.params.hello_timeout,
        std::time::Duration::from_secs(30)
    );
    assert_eq!(
        c.local_tunnel("lns1").unwrap().params.hello_timeout,
        std::time::Duration::from_secs(30)
    );
}
