/* notify.c: keyholdd's side of systemd's service notification protocol
 * (sd_notify(3), sd_watchdog_enabled(3)). READY=1 once it serves; STATUS=
 * lines saying what it is doing; WATCHDOG=1 from a timer on the event
 * loop, every half WATCHDOG_USEC, but only while the last token probe
 * (metrics/metrics_probe.c, a worker calling C_GenerateRandom) finished
 * within WATCHDOG_USEC: a wedged loop sends nothing because the timer does
 * not run, and a wedged token (or every worker stuck on it) stops the
 * keepalives too, so systemd restarts keyholdd (WatchdogSec= in the unit).
 * A token that is merely gone answers the probe with an error quickly and
 * does not stop the keepalives: a restart would not bring it back.
 * STOPPING=1 is sent by net/ when shutdown begins. */
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "core/svc.h"
#include "core/svc_clock.h"
#include "config/config.h"
#include "daemon/notify.h"
#include "kh_log.h"
#include "kh_util.h"
#include "metrics/metrics.h"
#include "net/net.h"

#define NOTIFY_TICK_S 2

static struct {
	struct svc *s;
	struct event *tick;
	char status[320];              /* the last STATUS= sent */
	bool withheld;                 /* keepalives withheld (logged once) */
	uint64_t keepalives;
} nt;

static void notify_send(const char *msg)
{
#ifdef HAVE_LIBSYSTEMD
	int r = sd_notify(0, msg);

	if (r < 0)
		log_dbg("sd_notify(%s): %s", msg, strerror(-r));
#else
	(void)msg;
#endif
}

void svc_notify_status(const char *fmt, ...)
{
	char line[sizeof(nt.status) + 8];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(nt.status, sizeof(nt.status), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "STATUS=%s", nt.status);
	notify_send(line);
}

void svc_notify_init(struct svc *s)
{
#ifdef HAVE_LIBSYSTEMD
	uint64_t usec = 0;

	/* 0 arg: keep WATCHDOG_USEC for a child (keyholdd has none). */
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		s->watchdog_us = usec;
		log_info("systemd watchdog: keepalives every %llu ms while the loop and the token answer",
			 (unsigned long long)(usec / 2000u));
	}
#else
	(void)s;
#endif
}

/* The STATUS= text for now; false when keepalives must be withheld. */
static bool notify_health(struct svc *s, char *out, size_t outsz)
{
	char why[160];
	uint64_t age = metrics_probe_age_us(s);
	bool alive = s->watchdog_us == 0 || age <= s->watchdog_us;

	if (!alive)
		snprintf(out, outsz, "token probe unanswered for %llu s; watchdog keepalives withheld",
			 (unsigned long long)(age / 1000000u));
	else if (metrics_healthy(s, why, sizeof(why)))
		snprintf(out, outsz, "serving on %.120s; %u workers; token up; %u connections", s->cfg->socket,
			 s->workers, atomic_load(&s->connections));
	else
		snprintf(out, outsz, "serving on %.100s; NOT healthy: %s", s->cfg->socket, why);
	return alive;
}

static void notify_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct svc *s = arg;
	char st[sizeof(nt.status)];
	unsigned freeze;
	bool alive;

	(void)fd;
	(void)what;
	/* Test builds: the loop stops as a wedged one would. */
	if ((freeze = svc_test_freeze_take("KEYHOLD_TEST_FREEZE_LOOP")) > 0)
		sleep(freeze);
	alive = notify_health(s, st, sizeof(st));
	if (strcmp(st, nt.status) != 0)
		svc_notify_status("%s", st);
	if (s->watchdog_us == 0)
		return;
	if (alive) {
		if (nt.withheld)
			log_warn("systemd watchdog: the token answers again; keepalives resume");
		nt.withheld = false;
		nt.keepalives++;
		notify_send("WATCHDOG=1");
	} else if (!nt.withheld) {
		nt.withheld = true;
		log_err("systemd watchdog: %s", st);
	}
}

enum kh_err svc_notify_start(struct svc *s, struct event_base *base, struct kh_errbuf *e)
{
	struct timeval tv = { NOTIFY_TICK_S, 0 };
	char st[sizeof(nt.status)];

	nt.s = s;
	if (s->watchdog_us > 0) {
		tv.tv_sec = (time_t)(s->watchdog_us / 2000000u);
		tv.tv_usec = (suseconds_t)(s->watchdog_us / 2u % 1000000u);
	}
#ifdef KEYHOLD_TESTING
	/* Test builds look for the loop's freeze file four times a second
	 * (keepalives then come more often than needed: harmless). */
	if (getenv("KEYHOLD_TEST_FREEZE_LOOP") != NULL && (tv.tv_sec > 0 || tv.tv_usec > 250000)) {
		tv.tv_sec = 0;
		tv.tv_usec = 250000;
	}
#endif
	nt.tick = event_new(base, -1, EV_PERSIST, notify_tick_cb, s);
	if (nt.tick == NULL || evtimer_add(nt.tick, &tv) != 0)
		return kh_err_set(e, KH_E_INTERNAL, "cannot arm the systemd notification timer");
	(void)notify_health(s, st, sizeof(st));
	snprintf(nt.status, sizeof(nt.status), "%s", st);
	{
		char line[sizeof(nt.status) + 24];

		snprintf(line, sizeof(line), "READY=1\nSTATUS=%s", st);
		notify_send(line);
	}
	if (s->watchdog_us > 0)
		notify_send("WATCHDOG=1");
	return KH_OK;
}

void svc_notify_reloading(bool begin)
{
	char line[64];

	if (begin)
		snprintf(line, sizeof(line), "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)kh_now_mono_us());
	else
		snprintf(line, sizeof(line), "READY=1");
	notify_send(line);
}

void svc_notify_stop(void)
{
	if (nt.tick != NULL)
		event_free(nt.tick);
	nt.tick = NULL;
}
