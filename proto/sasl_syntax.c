/*
 * sasl_syntax.c - SASL mechanism names and initial responses on a command
 * line (proto/sasl_syntax.h), one check for every protocol's AUTH.
 *
 * Never reads at or past n; never allocates.
 */
#include "proto/sasl_syntax.h"

bool
sasl_syntax_mech(const char *s, size_t n, char *upper)
{
	if (n == 0 || n > SASL_SYNTAX_MECH_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			c == '-' || c == '_'))
			return false;
		upper[i] = c;
	}
	upper[n] = '\0';
	return true;
}

bool
sasl_syntax_response(const char *s, size_t n, bool *empty_r)
{
	size_t pad = 0;

	if (empty_r != NULL)
		*empty_r = n == 1 && s[0] == '=';
	if (n == 1 && s[0] == '=')
		return true;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '=') {
			pad++;
			continue;
		}
		if (pad > 0 ||
		    !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			(c >= '0' && c <= '9') || c == '+' || c == '/'))
			return false;
	}
	/* padding only completes a quantum: "==" alone is not base64 */
	return pad <= 2 && (pad == 0 || n % 4 == 0);
}
