// Runs the real streamrec binary as a child process on a free port with its own data dir.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace streamrec::testing {

class ServerProcess {
 public:
  //! `binary` is the streamrec executable; `data_dir` is used as --data-dir.
  ServerProcess(std::string binary, std::string data_dir, std::string config_path = {});
  ~ServerProcess();  // SIGKILL if still running

  //! Starts `streamrec serve --port 0` and waits for its "listening" line (false on failure).
  bool Start(int timeout_ms = 30000);
  //! SIGTERM and wait; returns the exit code, or 128 + the signal that ended it.
  int Stop();
  //! SIGKILL and wait: a crash, nothing flushed.
  void Kill();

  uint16_t port() const { return port_; }
  //! Everything the server wrote to stderr (read after Stop/Kill).
  std::string Stderr() const;

 private:
  std::string binary_, data_dir_, config_path_, stderr_path_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

}  // namespace streamrec::testing
