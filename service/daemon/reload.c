/* reload.c: SIGHUP. keyholdd re-reads its configuration file and applies,
 * in place, what can change while it runs: [access] roles (for
 * connections made from then on; a connection keeps the roles it was
 * given), [key:NAME] grants (at once; grants made at run time stay),
 * [revocation], [expiry] (the monitor's timer takes the new interval) and
 * log_level. Every other setting that differs is logged as needing a
 * restart and keeps its running value. A file that does not parse changes
 * nothing. The live configuration is replaced whole (an atomic pointer);
 * the replaced one stays allocated until exit, because a worker may still
 * be reading it (config.h, svc_config_reloaded). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "access/access.h"
#include "config/config.h"
#include "core/svc.h"
#include "daemon/notify.h"
#include "daemon/reload.h"
#include "kh_log.h"
#include "revocation/revocation.h"

/* Each reload keeps its predecessor until exit; bounded so that a signal
 * storm cannot grow memory without end (the grants and policies of one
 * configuration are a few KiB). */
#define RELOAD_MAX 1024

static struct {
	struct svc *s;
	struct event *ev_hup;
	struct svc_config **retired;
	size_t n_retired;
	unsigned n_restart;
} rl;

static const char *reload_level_name(int level)
{
	switch (level) {
	case KH_LOG_ERR: return "error";
	case KH_LOG_WARN: return "warn";
	case KH_LOG_DEBUG: return "debug";
	default: return "info";
	}
}

static void reload_restart_cb(void *arg, const char *what)
{
	(void)arg;
	rl.n_restart++;
	log_warn("reload: %s changed; it takes effect only after a restart (the running value stays)", what);
}

static void reload_run(struct svc *s)
{
	struct svc_config *old = s->cfg, *fresh = NULL, *live = NULL, **grown;
	struct kh_errbuf e = { 0 };

	svc_notify_reloading(true);
	log_info("SIGHUP: reloading %s", old->path);
	if (rl.n_retired >= RELOAD_MAX) {
		log_err("reload refused: %u reloads since start; restart keyholdd", RELOAD_MAX);
		svc_notify_status("reload refused: too many reloads; restart keyholdd");
		goto out;
	}
	if (svc_config_load(old->path, &fresh, &e) != KH_OK) {
		log_err("reload failed, the running configuration stays: %s", e.msg);
		svc_notify_status("reload failed: %s", e.msg);
		goto out;
	}
	grown = realloc(rl.retired, (rl.n_retired + 1) * sizeof(*rl.retired));
	if (grown == NULL) {
		log_err("reload failed: out of memory");
		goto out;
	}
	rl.retired = grown;
	rl.n_restart = 0;
	live = svc_config_reloaded(old, fresh, reload_restart_cb, NULL);
	if (live == NULL) {
		log_err("reload failed: out of memory");
		goto out;
	}
	if (s->grants != NULL && access_grants_reload(s->grants, live, &e) != KH_OK) {
		log_err("reload failed, the running configuration stays: key grants: %s", e.msg);
		svc_config_free_retired(live);
		goto out;
	}
	atomic_store(&s->cfg, live);
	rl.retired[rl.n_retired++] = old;
	kh_log_set_level((enum kh_log_level)live->log_level);
	svc_expiry_reschedule(s);
	svc_revsched_reschedule(s);
	log_info("reloaded %s: [access] (%zu principals), [key:NAME] grants, [revocation], [expiry], log_level = %s "
		 "applied; %u setting(s) need a restart",
		 live->path, live->n_grants, reload_level_name(live->log_level), rl.n_restart);
	svc_notify_status("reloaded; %u setting(s) need a restart", rl.n_restart);
out:
	svc_config_free(fresh);
	svc_notify_reloading(false);
}

static void reload_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	reload_run(arg);
}

enum kh_err svc_reload_start(struct svc *s, struct event_base *base, struct kh_errbuf *e)
{
	rl.s = s;
	rl.ev_hup = evsignal_new(base, SIGHUP, reload_signal_cb, s);
	if (rl.ev_hup == NULL || evsignal_add(rl.ev_hup, NULL) != 0)
		return kh_err_set(e, KH_E_INTERNAL, "cannot install the SIGHUP handler");
	return KH_OK;
}

void svc_reload_stop(void)
{
	size_t i;

	if (rl.ev_hup != NULL)
		event_free(rl.ev_hup);
	rl.ev_hup = NULL;
	for (i = 0; i < rl.n_retired; i++)
		svc_config_free_retired(rl.retired[i]);
	free(rl.retired);
	rl.retired = NULL;
	rl.n_retired = 0;
}
