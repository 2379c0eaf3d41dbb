/* net/net.h: keyholdd's server: the Unix and TLS listeners, connections,
 * frames in and out (svc_server.c); requests go to rpc/dispatch.h on the
 * worker pool. */
#ifndef NET_NET_H
#define NET_NET_H

#include "kh_err.h"

struct event_base;
struct svc;
struct svc_server;

enum kh_err svc_server_new(struct svc *s, struct event_base *base, struct svc_server **out,
			   struct kh_errbuf *e) KH_WUR;
/* Stop accepting, finish in-flight requests, close connections; the loop
 * exits when done (or after a grace period). */
void svc_server_shutdown(struct svc_server *srv);
/* Serves a connected Unix stream socket as if accepted (SO_PEERCRED names
 * its peer); takes fd. For the whole-connection fuzzer. */
enum kh_err svc_server_adopt(struct svc_server *srv, int fd) KH_WUR;
/* Jobs on the workers not yet delivered back (housekeeping included). */
unsigned svc_server_inflight(const struct svc_server *srv);
/* After the main loop: stops the event loops of [service] loops, each once
 * the request it runs in place is done; their connections are then the
 * main thread's. Before anything a request uses is torn down. */
void svc_server_stop_loops(struct svc_server *srv);
void svc_server_free(struct svc_server *srv);

#endif
