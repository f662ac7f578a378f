#include "backend/imap_private.h"
const struct imap_cmd_def imap_cmds_mailbox[] = { { NULL } };
void imap_unselect(struct imap_session *s) { }
