//! Saved models: train once, score many times.

use latmove::model::Model;

use crate::util::*;

#[test]
fn a_saved_model_scores_exactly_as_detect_with_train() {
    let dir = tempdir();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    expect_code(
        &latmove(&[
            "synth",
            "--scenario",
            "hard",
            "--rows",
            "30000",
            "--seed",
            "5",
            "-o",
            &d("day.csv"),
        ]),
        0,
    );
    expect_code(
        &latmove(&[
            "synth",
            "--scenario",
            "hard",
            "--benign-only",
            "--rows",
            "30000",
            "--seed",
            "6",
            "-o",
            &d("base.csv"),
        ]),
        0,
    );
    expect_code(
        &latmove(&["train", &d("base.csv"), "-o", &d("model.json")]),
        0,
    );
    let direct = latmove(&[
        "detect",
        &d("day.csv"),
        "--train",
        &d("base.csv"),
        "--no-charts",
        "--out",
        &d("a"),
    ]);
    expect_code(&direct, 0);
    let scored = latmove(&[
        "score",
        "--model",
        &d("model.json"),
        &d("day.csv"),
        "--no-charts",
        "--out",
        &d("b"),
    ]);
    expect_code(&scored, 0);
    let read = |p: &str| std::fs::read_to_string(format!("{p}/host_scores.csv")).unwrap();
    assert!(
        read(&d("a")) == read(&d("b")),
        "score with the saved model differs from detect --train"
    );
    assert!(String::from_utf8_lossy(&scored.stdout).contains("saved model"));

    // Save, load, save again: the same model, byte for byte.
    let m = Model::load(std::path::Path::new(&d("model.json"))).unwrap();
    assert_eq!(
        m.to_json().unwrap(),
        std::fs::read(d("model.json")).unwrap()
    );
    assert_eq!(m.training.inputs.len(), 1);
    assert_eq!(m.training.inputs[0].sha256.len(), 64);
    assert_eq!(m.features.len(), 19);
}

#[test]
fn incompatible_models_are_refused() {
    let dir = tempdir();
    let model = dir.path().join("model.json");
    expect_code(
        &latmove(&[
            "train",
            sample().to_str().unwrap(),
            "--features",
            "seed",
            "-o",
            model.to_str().unwrap(),
        ]),
        0,
    );
    let text = std::fs::read_to_string(&model).unwrap();
    let old = write(
        dir.path(),
        "old.json",
        text.replacen("\"model_version\":1", "\"model_version\":0", 1)
            .as_bytes(),
    );
    let o = latmove(&[
        "score",
        "--model",
        old.to_str().unwrap(),
        sample().to_str().unwrap(),
    ]);
    expect_code(&o, 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("model version 0"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let alien = write(
        dir.path(),
        "alien.json",
        text.replacen("\"flow_count\"", "\"telepathy\"", 1)
            .as_bytes(),
    );
    let o = latmove(&[
        "score",
        "--model",
        alien.to_str().unwrap(),
        sample().to_str().unwrap(),
    ]);
    expect_code(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("'telepathy'"));
    let junk = write(dir.path(), "junk.json", b"{\"hello\": 1}");
    let o = latmove(&[
        "score",
        "--model",
        junk.to_str().unwrap(),
        sample().to_str().unwrap(),
    ]);
    expect_code(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a latmove model"));
}
