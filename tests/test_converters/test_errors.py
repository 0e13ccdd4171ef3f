"""One ConversionError for the model and the data set converters, a ValueError, and how the
command lines report it (nlseg/converters/errors.py, cli.py)."""
import pytest

from nlseg.converters import ConversionError, convert_camvid, load_checkpoint
from nlseg.converters.cli import report_error, run_cli


def test_model_and_data_set_converters_raise_the_one_error(tmp_path):
    assert issubclass(ConversionError, ValueError)
    with pytest.raises(ConversionError, match='does not exist'):
        load_checkpoint(str(tmp_path / 'none.pth'))
    with pytest.raises(ConversionError, match='does not exist'):
        convert_camvid(str(tmp_path / 'nowhere'), str(tmp_path / 'out'))


def test_command_lines_print_one_error_line_and_exit_with_1(capsys):
    assert report_error(ConversionError('bad source')) == 1
    assert capsys.readouterr().err == 'error: bad source\n'

    def main():
        raise ConversionError('unpaired files: a.png')

    with pytest.raises(SystemExit) as exit_info:
        run_cli(main)
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == 'error: unpaired files: a.png\n'
    run_cli(lambda: None)  # no error: returns
