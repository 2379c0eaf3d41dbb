/* daemon/reload.h: SIGHUP re-reads the configuration (reload.c). */
#ifndef DAEMON_RELOAD_H
#define DAEMON_RELOAD_H

#include "kh_err.h"

struct event_base;
struct svc;

/* Installs the SIGHUP handler on the loop. */
enum kh_err svc_reload_start(struct svc *s, struct event_base *base, struct kh_errbuf *e) KH_WUR;
/* After svc_stop and the last svc_config_free: frees the handler and the
 * configurations reloads replaced. */
void svc_reload_stop(void);

#endif
