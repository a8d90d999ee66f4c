module akvinterop/harness

go 1.24.13

require sigs.k8s.io/secrets-store-csi-driver v1.5.6
