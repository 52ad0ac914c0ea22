// jemalloc's settings for the executables that link it (CMake's streamrec_use_allocator adds this
// file to each). jemalloc reads them when the process starts; MALLOC_CONF in the environment is
// read after them, so it can still change any of them.
//
// background_thread: freed pages are given back to the kernel by jemalloc's own threads instead of
// by whichever thread frees memory next (an HTTP thread, the log writer, a pipeline worker);
// measured in docs/DESIGN.md#memory-allocator.
extern "C" {
const char* malloc_conf = "background_thread:true";  // NOLINT: the name jemalloc looks up
}
