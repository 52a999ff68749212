function readConfig(name) {
  return { name, debug: name === 'dev' };
}

module.exports = { readConfig };
