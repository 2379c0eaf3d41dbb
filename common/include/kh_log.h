/* kh_log: leveled logging with the function name. Three sinks: syslog
 * (daemonised), the journal when stderr IS the journal's stream (the
 * device and inode in JOURNAL_STREAM match fd 2, as sd-daemon(3) says to
 * check), plain timestamped lines on stderr otherwise. Never log PINs,
 * payloads or signatures. */
#ifndef KH_LOG_H
#define KH_LOG_H

#include <stdbool.h>
#include <sys/types.h>

#include "kh_err.h"

/* syslog(3) priorities: the journal and syslog get them as they are. */
enum kh_log_level { KH_LOG_ERR = 3, KH_LOG_WARN = 4, KH_LOG_INFO = 6, KH_LOG_DEBUG = 7 };

/* MESSAGE_ID= of lifecycle events (journalctl MESSAGE_ID=...; the list
 * is in docs/CLI.md "Logs"). Fixed forever: alerts match on them. */
#define KH_MSGID_START "8d3c2a1f5b7e4c09a6e1d4f27b90c3e5"
#define KH_MSGID_READY "2f6b9e04c1d84a7fb35e6a90d17c4b28"
#define KH_MSGID_STOP "c47e1a9d3b2f4e6081d5a7c9e0f2b364"
#define KH_MSGID_TOKEN_LOST "5e90d2b7a4c14f3e8b6d1a0c9f7e2d45"
#define KH_MSGID_TOKEN_BACK "a13f6c8e2d9b47015c4e8f3a6b0d9e71"
#define KH_MSGID_FIPS_FAILURE "e7b24d9a0f3c48e6a1d5c2b8f94e0a63"

/* Structured fields of one message (each may be NULL): the journal gets
 * KEYHOLD_METHOD=, KEYHOLD_KEY=, KEYHOLD_PRINCIPAL= and MESSAGE_ID=. */
struct kh_log_fields {
	const char *method;
	const char *key;
	const char *principal;
	const char *message_id;
};

/* Send messages to syslog (daemonised, no terminal). */
void kh_log_use_syslog(void);
/* Messages above this level are dropped. Default KH_LOG_INFO. */
void kh_log_set_level(enum kh_log_level lvl);
enum kh_log_level kh_log_get_level(void);
void kh_log_write(enum kh_log_level lvl, const char *func, const char *fmt, ...) KH_PRINTF(3, 4);
/* kh_log_write with structured fields (f may be NULL). */
void kh_log_event(enum kh_log_level lvl, const char *func, const struct kh_log_fields *f, const char *fmt, ...)
	KH_PRINTF(4, 5);

/* Whether JOURNAL_STREAM's value env ("DEV:INODE", decimal) names the
 * file (dev, ino): false for NULL, junk or another file. */
bool kh_log_journal_stream_is(const char *env, dev_t dev, ino_t ino);
/* Whether stderr is the journal's stream now (JOURNAL_STREAM against
 * fstat(2) of fd 2); kh_log decides once, at its first message. */
bool kh_log_stderr_is_journal(void);

#define log_err(...) kh_log_write(KH_LOG_ERR, __func__, __VA_ARGS__)
#define log_warn(...) kh_log_write(KH_LOG_WARN, __func__, __VA_ARGS__)
#define log_info(...) kh_log_write(KH_LOG_INFO, __func__, __VA_ARGS__)
#define log_dbg(...) \
	do { if (kh_log_get_level() >= KH_LOG_DEBUG) kh_log_write(KH_LOG_DEBUG, __func__, __VA_ARGS__); } while (0)
/* A lifecycle event: log_event(KH_LOG_INFO, KH_MSGID_READY, "...", ...). */
#define log_event(lvl, id, ...) \
	kh_log_event((lvl), __func__, &(const struct kh_log_fields){ NULL, NULL, NULL, (id) }, __VA_ARGS__)

#endif
