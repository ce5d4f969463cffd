"""Pod Security admission's policy, pure: the checks (`checks`) and how a namespace's labels
choose which run (`policy`). The admission plugin that applies them is in
`tinykube.apiserver.admission`."""
