//! The Zeek, nfdump, Argus and Suricata readers on arbitrary records: the
//! first byte picks a format's header (or none, for JSON lines), the rest
//! are the records. No input may panic, and two reads give the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

const HEADERS: [&str; 5] = [
    "#separator \\x09\n#unset_field\t-\n#empty_field\t(empty)\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\thistory\torig_pkts\tresp_pkts\tlabel\n",
    "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt\n",
    "firstSeen,duration,proto,srcAddr,srcPort,dstAddr,dstPort,packets,bytes,flows\n",
    "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,SrcPkts,DstPkts,SrcBytes,DstBytes,State,Label\n",
    "",
];

fuzz_target!(|data: &[u8]| {
    let Some((pick, rest)) = data.split_first() else {
        return;
    };
    let header = HEADERS[usize::from(*pick) % HEADERS.len()];
    // A NUL first: the check writes the rest as it is, no CIC header.
    let bytes = [&[0u8][..], header.as_bytes(), rest].concat();
    latmove::flows::check::one_thread_equals_ranges(&bytes, 64);
});
