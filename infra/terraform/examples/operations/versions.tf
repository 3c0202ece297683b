terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.80, < 7.0"
    }
  }

  # A real environment keeps its state remotely, e.g.:
  # backend "s3" { bucket = "<state bucket>", key = "dpc-elt/operations/prod.tfstate", region = "ap-northeast-1", use_lockfile = true }
}
