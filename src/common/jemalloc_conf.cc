// jemalloc's settings for the executables that link it (CMake's streamrec_use_allocator adds this
// file to each). jemalloc reads them when the process starts; MALLOC_CONF in the environment is
// read after them, so it can still change any of them.
//
// background_thread: freed pages are given back to the kernel by jemalloc's own threads instead of
// by whichever thread frees memory next (an HTTP thread, the log writer, a pipeline worker).
// Measured on 2026-12-02, against jemalloc's defaults: ingest at 1.1M users 65.9k against
// 59.2k-60.3k events/s at 543 against 554-557 MiB RSS; the pipeline scoring with SASRec 50.3k-52.7k
// against 43.7k-47.0k events/s.
extern "C" {
const char* malloc_conf = "background_thread:true";  // NOLINT: the name jemalloc looks up
}
