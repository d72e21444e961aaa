// Whether the client of a request that is still being computed has gone away,
// for the non-streaming endpoints: a streaming handler learns it when a write
// fails, but a non-streaming one writes nothing until the reply is ready, so
// it must look at the socket itself to cancel a generation nobody will read.
//
// Debian's cpp-httplib (0.11) hands a handler no access to its connection
// (later versions added Request::is_connection_closed). A handler runs on its
// connection's thread and httplib closes the socket only after the handler
// returns, so the socket found here by its addresses stays this connection's
// for as long as the handler polls it.
#pragma once

#include <string>

namespace ember::serve {

class ConnectionProbe {
 public:
  // Finds this process's TCP socket whose local and peer addresses are these
  // (numeric, as httplib's Request reports them). When none matches (another
  // transport), closed() is always false: the request then runs to its end.
  ConnectionProbe(const std::string& local_addr, int local_port, const std::string& remote_addr, int remote_port);

  bool found() const { return fd_ >= 0; }
  // True once the peer has closed or reset the connection: the socket reads
  // end-of-file or an error. Bytes waiting to be read (a pipelined request)
  // are not a close. Never blocks.
  bool closed() const;

 private:
  int fd_ = -1;
};

}  // namespace ember::serve
