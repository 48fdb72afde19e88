# One private cluster (on-premises, by kubeconfig) and two public clusters in two AWS
# regions, wired together: the chart once per zone with the values `isthmus render
# helm-values` wrote into values/ (run `make`-free: see README.md here), drills and peak
# season as validated switches. The interconnect between the private network and the two
# VPCs (VPN or Direct Connect) is the site's and not created here.

provider "aws" {
  alias  = "public_a"
  region = var.regions.public_a
}

provider "aws" {
  alias  = "public_b"
  region = var.regions.public_b
}

provider "kubernetes" {
  alias          = "private"
  config_path    = var.private_kubeconfig
  config_context = var.private_context
}

provider "helm" {
  alias = "private"
  kubernetes {
    config_path    = var.private_kubeconfig
    config_context = var.private_context
  }
}

locals {
  chart = "${path.root}/../../../deploy/helm/isthmus"
  zones = {
    public_a = { name = "public-a", namespace = "isthmus-public-a" }
    public_b = { name = "public-b", namespace = "isthmus-public-b" }
  }
}

module "public_a" {
  source             = "../../modules/public_cloud"
  providers          = { aws = aws.public_a }
  zone               = "public-a"
  vpc_cidr           = "10.20.0.0/16"
  availability_zones = ["${var.regions.public_a}a", "${var.regions.public_a}b", "${var.regions.public_a}c"]
  ray_workers        = var.ray_workers.public_a
}

module "public_b" {
  source             = "../../modules/public_cloud"
  providers          = { aws = aws.public_b }
  zone               = "public-b"
  vpc_cidr           = "10.30.0.0/16"
  availability_zones = ["${var.regions.public_b}a", "${var.regions.public_b}b"]
  ray_workers        = var.ray_workers.public_b
}

module "private" {
  source            = "../../modules/private_cloud"
  providers         = { kubernetes = kubernetes.private }
  caller_namespaces = var.caller_namespaces
}

module "drills_private" {
  source             = "../../modules/chaos_drills"
  zone_kind          = "private"
  namespace          = module.private.namespace
  allowed_namespaces = [module.private.namespace]
  enabled            = var.drills.enabled
  private_partition  = var.drills.private_partition
  public_link        = { enabled = var.drills.public_link }
  database_cut       = { enabled = var.drills.database_cut, hosts = var.drills.database_hosts }
  schedule           = var.drills.schedule
}

module "drills_public" {
  for_each           = local.zones
  source             = "../../modules/chaos_drills"
  zone_kind          = "public"
  namespace          = each.value.namespace
  allowed_namespaces = [each.value.namespace]
  enabled            = var.drills.enabled
  public_nodes       = { enabled = var.drills.public_nodes }
  schedule           = var.drills.schedule
}

module "peak_season" {
  source       = "../../modules/peak_season"
  windows      = var.peak_windows
  max_replicas = var.ranking_max_replicas
}

module "release_private" {
  source           = "../../modules/isthmus_release"
  providers        = { helm = helm.private }
  namespace        = module.private.namespace
  chart_path       = local.chart
  zone_values_yaml = file("${path.root}/values/private.yaml")
  overlays         = [module.private.helm_values, module.drills_private.helm_values]
  image            = var.image
}

# The public releases need helm providers configured from the clusters created above; a
# provider cannot be created per for_each instance, hence one block per zone.
data "aws_eks_cluster_auth" "public_a" {
  provider = aws.public_a
  name     = module.public_a.cluster_name
}

provider "helm" {
  alias = "public_a"
  kubernetes {
    host  = module.public_a.cluster_endpoint
    token = data.aws_eks_cluster_auth.public_a.token
  }
}

module "release_public_a" {
  source           = "../../modules/isthmus_release"
  providers        = { helm = helm.public_a }
  namespace        = local.zones.public_a.namespace
  chart_path       = local.chart
  zone_values_yaml = file("${path.root}/values/public-a.yaml")
  overlays         = [module.drills_public["public_a"].helm_values, module.peak_season.helm_values]
  image            = var.image
}

data "aws_eks_cluster_auth" "public_b" {
  provider = aws.public_b
  name     = module.public_b.cluster_name
}

provider "helm" {
  alias = "public_b"
  kubernetes {
    host  = module.public_b.cluster_endpoint
    token = data.aws_eks_cluster_auth.public_b.token
  }
}

module "release_public_b" {
  source           = "../../modules/isthmus_release"
  providers        = { helm = helm.public_b }
  namespace        = local.zones.public_b.namespace
  chart_path       = local.chart
  zone_values_yaml = file("${path.root}/values/public-b.yaml")
  overlays         = [module.drills_public["public_b"].helm_values, module.peak_season.helm_values]
  image            = var.image
}
