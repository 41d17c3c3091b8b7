use std::io::Read;

use crate::util::*;

#[test]
fn synth_writes_the_real_layout_byte_for_byte() {
    let dir = tempdir();
    let out = dir.path().join("day.csv");
    let o = latmove(&[
        "synth",
        "--rows",
        "3000",
        "--seed",
        "7",
        "-o",
        out.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    let bytes = std::fs::read(&out).unwrap();
    // The header as published (../shared/CIC-IDS2017.md section 2).
    let expected_header = "Flow ID, Source IP, Source Port, Destination IP, Destination Port, Protocol, Timestamp, Flow Duration, Total Fwd Packets, Total Backward Packets,Total Length of Fwd Packets, Total Length of Bwd Packets, Fwd Packet Length Max, Fwd Packet Length Min, Fwd Packet Length Mean, Fwd Packet Length Std,Bwd Packet Length Max, Bwd Packet Length Min, Bwd Packet Length Mean, Bwd Packet Length Std,Flow Bytes/s, Flow Packets/s, Flow IAT Mean, Flow IAT Std, Flow IAT Max, Flow IAT Min,Fwd IAT Total, Fwd IAT Mean, Fwd IAT Std, Fwd IAT Max, Fwd IAT Min,Bwd IAT Total, Bwd IAT Mean, Bwd IAT Std, Bwd IAT Max, Bwd IAT Min,Fwd PSH Flags, Bwd PSH Flags, Fwd URG Flags, Bwd URG Flags, Fwd Header Length, Bwd Header Length,Fwd Packets/s, Bwd Packets/s, Min Packet Length, Max Packet Length, Packet Length Mean, Packet Length Std, Packet Length Variance,FIN Flag Count, SYN Flag Count, RST Flag Count, PSH Flag Count, ACK Flag Count, URG Flag Count, CWE Flag Count, ECE Flag Count, Down/Up Ratio, Average Packet Size, Avg Fwd Segment Size, Avg Bwd Segment Size, Fwd Header Length,Fwd Avg Bytes/Bulk, Fwd Avg Packets/Bulk, Fwd Avg Bulk Rate, Bwd Avg Bytes/Bulk, Bwd Avg Packets/Bulk,Bwd Avg Bulk Rate,Subflow Fwd Packets, Subflow Fwd Bytes, Subflow Bwd Packets, Subflow Bwd Bytes,Init_Win_bytes_forward, Init_Win_bytes_backward, act_data_pkt_fwd, min_seg_size_forward,Active Mean, Active Std, Active Max, Active Min,Idle Mean, Idle Std, Idle Max, Idle Min, Label";
    assert!(bytes.starts_with(format!("{expected_header}\r\n").as_bytes()));
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3001);
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "every line ends in CRLF"
    );
    let mut afternoon = false;
    for l in &lines[1..] {
        assert_eq!(l.split(',').count(), 85, "{l}");
        let ts = l.split(',').nth(6).unwrap();
        if ts.is_empty() {
            continue;
        }
        let clock = ts.split(' ').nth(1).unwrap();
        let hour: u32 = clock.split(':').next().unwrap().parse().unwrap();
        assert!((1..=12).contains(&hour), "12-hour clock: {ts}");
        assert!(
            ts.starts_with("4/7/2017 ") && !ts.contains("M"),
            "d/m/yyyy h:mm: {ts}"
        );
        afternoon |= hour < 7;
    }
    assert!(afternoon, "afternoon flows are written as 1:xx-5:xx");
    for label in ["FTP-Patator", "SSH-Patator", "PortScan", "BENIGN"] {
        assert!(text.contains(&format!(",{label}\r\n")), "{label} planted");
    }
    assert!(
        text.contains(",Infinity,") || text.contains(",NaN,"),
        "zero-duration rate traps"
    );
}

#[test]
fn synth_is_seeded_and_gzips_by_extension() {
    let dir = tempdir();
    let a = dir.path().join("a.csv");
    let b = dir.path().join("b.csv.gz");
    expect_code(
        &latmove(&["synth", "--rows", "1000", "-o", a.to_str().unwrap()]),
        0,
    );
    expect_code(
        &latmove(&["synth", "--rows", "1000", "-o", b.to_str().unwrap()]),
        0,
    );
    let mut unzipped = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&b).unwrap())
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), unzipped, "same seed, same day");
    let c = dir.path().join("c.csv");
    expect_code(
        &latmove(&[
            "synth",
            "--rows",
            "1000",
            "--seed",
            "9",
            "-o",
            c.to_str().unwrap(),
        ]),
        0,
    );
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());
}
