# shellcheck shell=bash
# nginx_mail.sh - nginx's mail proxy from Debian's packages (nginx-light or
# nginx, with libnginx-mod-mail) as a peer for the benchmarks; sourced by
# bench/gate.sh after bench/bench_lib.sh. Nothing here touches /etc/nginx:
# the config, pid and logs live in the caller's directory, nginx runs in
# the foreground (daemon off) so its master's pid is $!, and the worker
# count and connection limits are set for the idle-session step.
#
#   need_nginx                  install the packages when missing (root)
#   nginx_mail_conf DIR PORT AUTH_PORT CERT KEY
#                               DIR/nginx.conf: IMAPS on 127.0.0.1:PORT,
#                               auth_http at 127.0.0.1:AUTH_PORT/auth
#   start_nginx DIR             start it; sets NGX_PID (the master)
#   nginx_worker PID            the worker process of master PID

NGX_MOD=/usr/lib/nginx/modules/ngx_mail_module.so

need_nginx() {
	if ! command -v nginx >/dev/null || [ ! -e "$NGX_MOD" ]; then
		[ "$(id -u)" = 0 ] || die "nginx or libnginx-mod-mail is missing and we are not root"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends nginx-light libnginx-mod-mail >/dev/null
	fi
	nginx -v 2>&1 | grep -q 'nginx/' || die "nginx does not run"
}

nginx_mail_conf() { # dir port auth_port cert key
	local dir=$1 port=$2 auth=$3 cert=$4 key=$5
	local nofile
	nofile=$(ulimit -Hn)
	[ "$nofile" = unlimited ] && nofile=1048576
	mkdir -p "$dir"
	cat >"$dir/nginx.conf" <<CONF
# written by bench/peers/nginx_mail.sh; throw-away
load_module $NGX_MOD;
worker_processes 1;
worker_rlimit_nofile $nofile;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections $((nofile - 100)); }
mail {
    server_name localhost;
    auth_http 127.0.0.1:$auth/auth;
    auth_http_timeout 10s;
    proxy_pass_error_message on;
    imap_auth plain login;
    ssl_certificate $cert;
    ssl_certificate_key $key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    server {
        listen 127.0.0.1:$port ssl;
        protocol imap;
    }
}
CONF
}

start_nginx() { # dir
	nginx -p "$1" -c "$1/nginx.conf" -e "$1/error.log" -g 'daemon off;' \
		2>>"$1/stderr" &
	# shellcheck disable=SC2034 # read by the caller
	NGX_PID=$!
}

nginx_worker() { # master pid
	local p
	for p in $(pgrep -P "$1"); do
		echo "$p"
		return 0
	done
	return 1
}
