"""RBAC with the real kubectls: a service account's token is Forbidden until a RoleBinding
allows it, `kubectl auth can-i` (also `--as` and `--list`) and `whoami` tell the truth, and a
user holding `edit` cannot bind `admin`."""

from __future__ import annotations

from tests.conftest import Kubectl, wait_allowed

FORBIDDEN = ('Error from server (Forbidden): pods is forbidden: User '
             '"system:serviceaccount:default:app" cannot list resource "pods" in API group "" '
             'in the namespace "default"')
SA = "system:serviceaccount:default:app"


def as_token(kubectl: Kubectl, token: str, *args: str, check: bool = True) -> str:
    result = kubectl.run("--token", token, *args, check=check)
    return result.stdout if check else result.stdout + result.stderr


def test_service_account_is_allowed_what_its_role_binding_grants(kubectl: Kubectl) -> None:
    kubectl("create", "sa", "app")
    token = kubectl("create", "token", "app").strip()
    assert FORBIDDEN in as_token(kubectl, token, "get", "pods", check=False)
    assert as_token(kubectl, token, "auth", "whoami", "-o",
                    "jsonpath={.status.userInfo.username}") == SA
    assert kubectl.run("auth", "can-i", "list", "pods", f"--as={SA}",
                       check=False).stdout.strip() == "no"

    kubectl("create", "role", "pod-reader", "--verb=get,list,watch", "--resource=pods")
    kubectl("create", "rolebinding", "app-reads", "--role=pod-reader",
            "--serviceaccount=default:app")
    assert "No resources found" in kubectl.run("--token", token, "get", "pods").stderr
    assert kubectl("auth", "can-i", "list", "pods", f"--as={SA}").strip() == "yes"
    assert kubectl.run("auth", "can-i", "delete", "pods", f"--as={SA}",
                       check=False).stdout.strip() == "no"
    assert kubectl.run("auth", "can-i", "list", "pods", "-n", "kube-system", f"--as={SA}",
                       check=False).stdout.strip() == "no"
    listed = as_token(kubectl, token, "auth", "can-i", "--list")
    assert any(line.split()[:1] == ["pods"] and "[get list watch]" in line
               for line in listed.splitlines()), listed
    assert "secrets" not in listed
    denied = as_token(kubectl, token, "get", "secrets", check=False)
    assert ('secrets is forbidden: User "system:serviceaccount:default:app" cannot list '
            'resource "secrets" in API group "" in the namespace "default"') in denied


def test_edit_cannot_grant_admin(kubectl: Kubectl) -> None:
    kubectl("create", "sa", "editor")
    kubectl("create", "rolebinding", "editor-edit", "--clusterrole=edit",
            "--serviceaccount=default:editor")
    wait_allowed(kubectl, "create", "configmaps", user="system:serviceaccount:default:editor")
    token = kubectl("create", "token", "editor").strip()
    # edit may write most things, and may not touch RBAC at all
    as_token(kubectl, token, "create", "configmap", "c", "--from-literal=a=b")
    refused = as_token(kubectl, token, "create", "rolebinding", "grab", "--clusterrole=admin",
                       "--serviceaccount=default:editor", check=False)
    assert ('rolebindings.rbac.authorization.k8s.io is forbidden: User '
            '"system:serviceaccount:default:editor" cannot create resource "rolebindings" in '
            'API group "rbac.authorization.k8s.io" in the namespace "default"') in refused

    # with rolebinding rights but not admin's, the escalation check refuses
    kubectl("create", "role", "binder", "--verb=create", "--resource=rolebindings")
    kubectl("create", "rolebinding", "editor-binder", "--role=binder",
            "--serviceaccount=default:editor")
    wait_allowed(kubectl, "create", "rolebindings", user="system:serviceaccount:default:editor")
    refused = as_token(kubectl, token, "create", "rolebinding", "grab", "--clusterrole=admin",
                       "--serviceaccount=default:editor", check=False)
    assert ('rolebindings.rbac.authorization.k8s.io "grab" is forbidden: user '
            '"system:serviceaccount:default:editor" (groups=["system:serviceaccounts" '
            '"system:serviceaccounts:default" "system:authenticated"]) is attempting to grant '
            'RBAC permissions not currently held:') in refused
    # binding what it holds (edit) is fine
    as_token(kubectl, token, "create", "rolebinding", "more-edit", "--clusterrole=edit",
             "--serviceaccount=default:app")
