# The NAT lab (tests/nat): network namespaces, kernel NAT and coturn as STUN/TURN server.
# Auto-included by the root Makefile; `make test` runs tests/nat with the unit and cluster
# tests (outside the loopback-only namespace of test-e2e: the lab makes its own).
.PHONY: nat-deps test-nat

EXTRA_TEST_DIRS += tests/nat
test: nat-deps

# Debian packages the lab needs, installed only when missing (CI machines start clean).
nat-deps:
	@missing=""; \
	command -v turnserver >/dev/null || test -x /usr/bin/turnserver || missing="$$missing coturn"; \
	command -v conntrack >/dev/null || test -x /usr/sbin/conntrack || missing="$$missing conntrack"; \
	command -v iptables >/dev/null || test -x /usr/sbin/iptables || missing="$$missing iptables"; \
	command -v ip >/dev/null || test -x /usr/sbin/ip || missing="$$missing iproute2"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

test-nat: install system-deps nat-deps web
	$(BIN)/pytest $(PYTEST_FLAGS) tests/nat
