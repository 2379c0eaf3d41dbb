/* core/svc_clock.h: keyhold's clock (svc_clock.c). */
#ifndef CORE_SVC_CLOCK_H
#define CORE_SVC_CLOCK_H

#include <stdint.h>

/* KEYHOLD_TESTING builds: $KEYHOLD_TEST_CLOCK names a file holding an
 * offset in seconds ("86400", "+3600", "-60") added to the real time on
 * every svc_now(), so that tests move keyhold's "now" without sleeping.
 * Other builds ignore the variable. Call once at start. */
void svc_clock_init(void);
/* Seconds since the epoch: the time keyhold judges expiry, renewal and
 * revocation freshness by. */
int64_t svc_now(void);

/* KEYHOLD_TESTING builds: when the environment variable env names a file
 * that exists, removes it and returns the whole seconds it holds (at most
 * 600), for a test to freeze the caller that long; 0 otherwise and in
 * other builds. keyholdd asks for KEYHOLD_TEST_FREEZE_LOOP (on the event
 * loop) and KEYHOLD_TEST_FREEZE_PROBE (in the token probe). */
unsigned svc_test_freeze_take(const char *env);

#endif
