"""The runtime's Kubernetes side: rolling serving pods onto a release, fetching a release into a pod."""
