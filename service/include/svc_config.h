/* svc_config: keyholdd's INI configuration (DESIGN §6), parsed with inih and
 * validated; errors name the file, the line and the reason. */
#ifndef SVC_CONFIG_H
#define SVC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "kh_err.h"

enum svc_fips_mode { SVC_FIPS_OFF, SVC_FIPS_ALIGNED, SVC_FIPS_VALIDATED };

enum svc_role {
	SVC_ROLE_ADMIN = 1u << 0,
	SVC_ROLE_SIGNER = 1u << 1,
	SVC_ROLE_AUDITOR = 1u << 2,
};

enum svc_principal_kind { SVC_PK_UID, SVC_PK_GID, SVC_PK_CERT };

/* [revocation] ocsp_nonce: send a nonce (RFC 8954) and refuse a response
 * that echoes another; required also refuses one that echoes none. */
enum svc_ocsp_nonce { SVC_NONCE_OFF, SVC_NONCE_ON, SVC_NONCE_REQUIRED };

/* One "role = principal" grant from [access]. */
struct svc_grant {
	unsigned role;                  /* one enum svc_role bit */
	enum svc_principal_kind kind;
	uid_t uid;                      /* SVC_PK_UID */
	gid_t gid;                      /* SVC_PK_GID */
	char cert[256];                 /* SVC_PK_CERT: SAN URI or CN */
};

struct svc_config {
	char *path;
	/* [service] */
	char *socket;
	mode_t socket_mode;
	char *socket_group;             /* NULL: keep the process group */
	char *state_dir;
	unsigned workers;
	enum svc_fips_mode fips_mode;
	bool fips_allow_eddsa;
	unsigned frame_max;
	unsigned max_connections;
	unsigned max_inflight;          /* per connection */
	unsigned idle_timeout_s;
	int log_level;                  /* KH_LOG_* */
	/* [token] */
	char *module;
	char *uri;
	char *pin_file;
	unsigned sessions;
	/* [tls] */
	char *tls_listen;
	char *tls_key;
	char *tls_cert;
	char *tls_client_truststore;
	/* [access] */
	struct svc_grant *grants;
	size_t n_grants;
	/* [revocation] (docs/REVOCATION.md) */
	unsigned rev_connect_timeout_s;
	unsigned rev_timeout_s;         /* whole transfer */
	unsigned rev_crl_max;           /* bytes of one CRL */
	unsigned rev_ocsp_max;          /* bytes of one OCSP response */
	enum svc_ocsp_nonce rev_nonce;
	char *rev_proxy;                /* NULL: no proxy (the environment is ignored) */
	/* [expiry] */
	unsigned exp_notify_days;       /* notify this many days before notAfter */
	unsigned exp_notify_every_s;    /* at most one notification per certificate per period */
	unsigned exp_check_interval_s;  /* how often the monitor runs */
	char **exp_hook;                /* argv (NULL-terminated) of the notification command; NULL: none */
	unsigned exp_hook_timeout_s;
};

/* Reads and validates path. On error e says "PATH:LINE: reason". */
enum kh_err svc_config_load(const char *path, struct svc_config **out, struct kh_errbuf *e) KH_WUR;
/* The same from a string; name stands for the file in messages. */
enum kh_err svc_config_parse(const char *text, const char *name, struct svc_config **out,
			     struct kh_errbuf *e) KH_WUR;
void svc_config_free(struct svc_config *c);

const char *svc_fips_mode_name(enum svc_fips_mode m);

/* "30s", "15m", "12h", "7d" -> seconds in [min_s, max_s]; 0 on success. */
int svc_config_duration(const char *s, unsigned min_s, unsigned max_s, unsigned *out) KH_WUR;
/* Splits a command line into argv: words separated by blanks, "double
 * quotes" group (\" and \\ inside), no shell. *argv is NULL-terminated and
 * freed with svc_config_argv_free. INVALID_ARGUMENT with a reason. */
enum kh_err svc_config_argv(const char *s, char ***argv, struct kh_errbuf *e) KH_WUR;
void svc_config_argv_free(char **argv);

#endif
