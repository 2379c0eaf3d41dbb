/* daemon/lifecycle.h: starting and stopping keyholdd's parts in order
 * (lifecycle.c), for main() and the whole-connection fuzzer. */
#ifndef DAEMON_LIFECYCLE_H
#define DAEMON_LIFECYCLE_H

#include <stdbool.h>
#include <sys/types.h>

#include "kh_err.h"

struct event_base;
struct store_dir;
struct svc;
struct svc_config;

/* Everything between the configuration (s->cfg, s->start_us set) and the
 * event loop: token, self-tests, state, workers, listeners, audit log.
 * On failure e says why; s->exit_code is 70 when a FIPS self-test failed.
 * svc_stop undoes whatever was started (also after a failed start). */
enum kh_err svc_start(struct svc *s, struct event_base *base, struct kh_errbuf *e) KH_WUR;
/* The uid keyholdd serves as: [service] user's, else its own. State files
 * and the PIN file must belong to it or to root. */
enum kh_err svc_service_uid(const struct svc_config *cfg, uid_t *out, struct kh_errbuf *e) KH_WUR;
/* Opens and checks state_dir and every state file in it (store_dir.h),
 * and with lock takes the instance lock. */
enum kh_err svc_state_open(const struct svc_config *cfg, bool lock, struct store_dir **out,
			   struct kh_errbuf *e) KH_WUR;
void svc_stop(struct svc *s);

#endif
