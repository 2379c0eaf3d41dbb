/* daemon/notify.h: keyholdd under systemd (notify.c): Type=notify
 * readiness and STATUS= lines, and WATCHDOG=1 keepalives sent from the
 * event loop only while the loop and the token are alive. Without
 * libsystemd, or outside systemd (no NOTIFY_SOCKET), these do nothing. */
#ifndef DAEMON_NOTIFY_H
#define DAEMON_NOTIFY_H

#include <stdbool.h>

#include "kh_err.h"

struct event_base;
struct svc;

/* Before svc_start: sets s->watchdog_us from WATCHDOG_USEC (sd-daemon's
 * sd_watchdog_enabled), so that the token probe is started for it. */
void svc_notify_init(struct svc *s);
/* Once keyholdd serves: READY=1 and a STATUS= line, then a timer on the
 * loop every half watchdog interval (or 2 s without a watchdog) that
 * sends WATCHDOG=1 when the last token probe finished within the
 * watchdog interval, and a new STATUS= line when the status changed. */
enum kh_err svc_notify_start(struct svc *s, struct event_base *base, struct kh_errbuf *e) KH_WUR;
/* A STATUS= line (also remembered as the current status). */
void svc_notify_status(const char *fmt, ...) KH_PRINTF(1, 2);
/* Around a configuration reload: RELOADING=1 (with MONOTONIC_USEC, as
 * Type=notify-reload wants), then READY=1. */
void svc_notify_reloading(bool begin);
void svc_notify_stop(void);

#endif
