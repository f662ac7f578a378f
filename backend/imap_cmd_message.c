#include "backend/imap_private.h"
const struct imap_cmd_def imap_cmds_message[] = { { NULL } };
void imap_more(struct imap_session *s) { }
