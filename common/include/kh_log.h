/* kh_log: leveled logging with the function name; journald under systemd,
 * stderr otherwise. Never log PINs, payloads or signatures. */
#ifndef KH_LOG_H
#define KH_LOG_H

#include "kh_err.h"

enum kh_log_level { KH_LOG_ERR = 3, KH_LOG_WARN = 4, KH_LOG_INFO = 6, KH_LOG_DEBUG = 7 };

/* Send messages to syslog (daemonised, no terminal). */
void kh_log_use_syslog(void);
/* Messages above this level are dropped. Default KH_LOG_INFO. */
void kh_log_set_level(enum kh_log_level lvl);
enum kh_log_level kh_log_get_level(void);
void kh_log_write(enum kh_log_level lvl, const char *func, const char *fmt, ...) KH_PRINTF(3, 4);

#define log_err(...) kh_log_write(KH_LOG_ERR, __func__, __VA_ARGS__)
#define log_warn(...) kh_log_write(KH_LOG_WARN, __func__, __VA_ARGS__)
#define log_info(...) kh_log_write(KH_LOG_INFO, __func__, __VA_ARGS__)
#define log_dbg(...) \
	do { if (kh_log_get_level() >= KH_LOG_DEBUG) kh_log_write(KH_LOG_DEBUG, __func__, __VA_ARGS__); } while (0)

#endif
