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
};

/* Reads and validates path. On error e says "PATH:LINE: reason". */
enum kh_err svc_config_load(const char *path, struct svc_config **out, struct kh_errbuf *e) KH_WUR;
/* The same from a string; name stands for the file in messages. */
enum kh_err svc_config_parse(const char *text, const char *name, struct svc_config **out,
			     struct kh_errbuf *e) KH_WUR;
void svc_config_free(struct svc_config *c);

const char *svc_fips_mode_name(enum svc_fips_mode m);

#endif
