"""The config schema (coopjax/config): every config file and variant loads,
unknown variants are refused, every field the library reads is declared."""

import ast
import glob
import importlib.util
import os
import re

import pytest

from coopjax.config import cdrl, coopflow, latent_flow, variants

from helpers import REPO as ROOT

CONFIGS = sorted(glob.glob(os.path.join(ROOT, 'configs', '*.py')))
BASES = {'cdrl': cdrl, 'coopflow': coopflow, 'latent_flow': latent_flow}
CDRL_IMAGES = ('cifar10', 'svhn', 'digits', 'celeba_compose',
               'celeba_inpaint', 'imagenet32_cond')


def load_module(path):
  spec = importlib.util.spec_from_file_location(
      'config_' + os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def declared_variants(path):
  """The variants named by the config's ValueError for an unknown one."""
  with pytest.raises(ValueError) as e:
    load_module(path).get_config('no_such_variant')
  message = str(e.value)
  assert '\n' not in message
  assert f'configs/{os.path.basename(path)}' in message
  return re.findall(r"'([a-z_0-9]*)'", message.split('known:')[1])


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_every_config_and_variant_loads(path):
  known = declared_variants(path)
  assert '' in known
  module = load_module(path)
  assert module.get_config().algorithm in ('cdrl', 'drl', 'coopflow',
                                           'latent_flow')
  for variant in known:
    c = module.get_config(variant)
    c.sample.chunk = 7  # declared everywhere: --config.sample.chunk works
    c.lock()


@pytest.mark.parametrize('name', CDRL_IMAGES)
def test_every_cdrl_image_config_has_drl(name):
  module = load_module(os.path.join(ROOT, 'configs', f'{name}.py'))
  c, base = module.get_config('drl'), module.get_config()
  assert (c.algorithm, c.model.initializer) == ('drl', 'none')
  assert c.model.langevin_steps == 30 and c.sample.langevin_steps is None
  assert c.data.to_dict() == base.data.to_dict()


def test_unknown_variant_names_the_known_ones():
  with pytest.raises(ValueError, match=r"configs/cifar10\.py; known: '', "
                     r"'drl', 'large'"):
    load_module(os.path.join(ROOT, 'configs', 'cifar10.py')).get_config('lrage')
  with pytest.raises(ValueError, match=r"'corrupt' \(comma-separated\)"):
    variants.apply(latent_flow.get_config(), 'gaussian,corupt',
                   latent_flow.VARIANTS, 'x.py', combine=True)
  c = variants.apply(latent_flow.get_config(), 'gaussian,corrupt',
                     latent_flow.VARIANTS, 'x.py', combine=True)
  assert (c.model.prior, c.data.missing_fraction) == ('gaussian', 0.3)


def test_no_config_file_edits_sys_path():
  for path in CONFIGS:
    with open(path, encoding='utf-8') as f:
      assert 'sys.path' not in f.read(), path


def test_langevin_steps_none_can_be_overridden():
  c = cdrl.get_config()
  assert c.sample.langevin_steps is None
  c.lock()
  c.sample.langevin_steps = 5
  with pytest.raises(TypeError):
    c.sample.langevin_steps = 'five'


# -- Every field the library reads exists in the base configs -----------------

# Functions that take one config section as ``cfg``: section, algorithms.
SECTION_PARAMS = {
    'build_ebm': ('model', ('cdrl', 'coopflow')),
    'build_initializer': ('model', ('cdrl',)),
    'build_flow': ('model', ('coopflow',)),
    'levels_from_config': ('schedule', ('cdrl',)),
    'make_optimizer': ('optim.*', ('cdrl', 'coopflow', 'latent_flow')),
}
CONFIGDICT_METHODS = {'get', 'update', 'unlocked', 'lock', 'unlock', 'items',
                      'keys', 'values', 'to_dict', 'to_json',
                      'to_json_best_effort', 'copy_and_resolve_references'}
SECTIONS = {'data', 'schedule', 'model', 'optim', 'train', 'sample', 'eval',
            'task', 'coopflow'}


def _algorithms_of(relpath):
  for name in BASES:
    # an algorithm's package, or its importer coopjax/convert/<name>.py
    if relpath.startswith(f'coopjax/{name}/') or (
        relpath == f'coopjax/convert/{name}.py'):
      return (name,)
  return tuple(BASES)


def _section_of(node):
  """'model' for ``<...>config.model``, else None."""
  if (isinstance(node, ast.Attribute) and node.attr in SECTIONS and
      (isinstance(node.value, ast.Name) and node.value.id == 'config' or
       isinstance(node.value, ast.Attribute) and node.value.attr == 'config')):
    return node.attr
  return None


def library_reads():
  """``{(section, field, algorithms)}`` read by attribute in coopjax/."""
  reads = set()
  for path in glob.glob(os.path.join(ROOT, 'coopjax', '**', '*.py'),
                        recursive=True):
    relpath = os.path.relpath(path, ROOT).replace(os.sep, '/')
    if relpath.startswith(('coopjax/config/', 'coopjax/data/')):
      continue  # the schema itself; the data loaders take partial mappings
    tree = ast.parse(open(path, encoding='utf-8').read())
    for fn in ast.walk(tree):
      if not isinstance(fn, ast.FunctionDef):
        continue
      aliases = {}
      if isinstance(fn, ast.FunctionDef) and fn.name in SECTION_PARAMS:
        aliases['cfg'] = SECTION_PARAMS[fn.name]
      for node in ast.walk(fn):
        if isinstance(node, ast.Assign):
          targets = node.targets[0]
          pairs = (zip(targets.elts, node.value.elts)
                   if isinstance(targets, ast.Tuple) and
                   isinstance(node.value, ast.Tuple)
                   else [(targets, node.value)])
          for target, value in pairs:
            section = _section_of(value)
            if section and isinstance(target, ast.Name):
              aliases[target.id] = (section, _algorithms_of(relpath))
      for node in ast.walk(fn):
        if not isinstance(node, ast.Attribute):
          continue
        section = _section_of(node.value)
        if section:
          reads.add((section, node.attr, _algorithms_of(relpath)))
        elif (isinstance(node.value, ast.Name) and
              node.value.id in aliases):
          section, algos = aliases[node.value.id]
          reads.add((section, node.attr, algos))
  return {r for r in reads if r[1] not in CONFIGDICT_METHODS}


def test_library_reads_are_found():
  reads = {(s, f) for s, f, _ in library_reads()}
  for wanted in [('sample', 'chunk'), ('model', 'energy_l2'),
                 ('coopflow', 'pretrain_steps'), ('eval', 'cache_dir'),
                 ('optim.*', 'warmup_offset'), ('task', 'recon_iters'),
                 ('model', 'blocks_per_stage'), ('schedule', 'ct_mode')]:
    assert wanted in reads


def test_every_field_the_library_reads_is_declared():
  missing = []
  for section, field, algos in sorted(library_reads()):
    for algo in algos:
      c = BASES[algo].get_config()
      if section == 'optim.*':
        groups = [c.optim[k] for k in c.optim]
      elif section in c:
        groups = [c[section]]
      else:
        continue  # e.g. the trainer's generic reads of a section it lacks
      missing += [f'{algo}: config.{section}.{field}'
                  for g in groups if field not in g]
  assert not missing, missing
