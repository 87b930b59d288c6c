#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ephemera_proto_fuzz::assertion(data));
